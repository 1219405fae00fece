package migrate

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestRewriteLayouts pins how line edits treat the shapes values files come in. The header
// comment is left out of want.
func TestRewriteLayouts(t *testing.T) {
	cases := []struct {
		name, in string
		opts     RewriteOptions
		want     string
	}{
		{
			name: "block list at the key's indentation",
			in:   "runners:\n  tags:\n  - a\n  - b\n  config: |\n    x\n",
			want: "runners:\n  config: |\n    x\n",
		},
		{
			name: "comments inside and after a removed value",
			in:   "runners:\n  # the tags\n  tags:\n    # first\n    - a\n    - b\n  # the config\n  config: x\n",
			want: "runners:\n  # the config\n  config: x\n",
		},
		{
			name: "line comment goes with its key",
			in:   "gitlabUrl: https://x # the server\nlocked: false # was locked once\nconcurrent: 1\n",
			want: "gitlabUrl: https://x # the server\nconcurrent: 1\n",
		},
		{
			name: "windows line endings are kept",
			in:   "gitlabUrl: https://x\r\nrunners:\r\n  tags: a\r\n  config: x\r\n",
			opts: RewriteOptions{SecretName: "s"},
			want: "gitlabUrl: https://x\r\nrunners:\r\n  secret: s\r\n  config: x\r\n",
		},
		{
			name: "secret replaces an existing one, keeping its comment",
			in:   "runners:\n  secret: old-secret # made by hand\n  tags: a\n",
			opts: RewriteOptions{SecretName: "new-secret"},
			want: "runners:\n  secret: new-secret # made by hand\n",
		},
		{
			name: "secret added to a file without runners",
			in:   "gitlabUrl: https://x\nrunnerRegistrationToken: abc\n",
			opts: RewriteOptions{SecretName: "s"},
			want: "gitlabUrl: https://x\nrunners:\n  secret: s\n",
		},
		{
			name: "secret under a null runners (re-encoded)",
			in:   "gitlabUrl: https://x\nrunners:\nlocked: true\n",
			opts: RewriteOptions{SecretName: "s"},
			want: "gitlabUrl: https://x\nrunners:\n  secret: s\n",
		},
		{
			name: "secret name that YAML would read as a number is quoted",
			in:   "runners:\n  tags: a\n  config: x\n",
			opts: RewriteOptions{SecretName: "1234"},
			want: "runners:\n  secret: \"1234\"\n  config: x\n",
		},
		{
			name: "flow style root (re-encoded)",
			in:   "{gitlabUrl: https://x, tags: a, concurrent: 2}\n",
			want: "{gitlabUrl: 'https://x', concurrent: 2}\n",
		},
		{
			name: "nothing left of runners: the key goes too",
			in:   "gitlabUrl: https://x\n\n# runner settings\nrunners:\n  # tags\n  tags: a\n\nconcurrent: 1\n",
			want: "gitlabUrl: https://x\n\nconcurrent: 1\n",
		},
		{
			name: "a merged mapping emptied by the migration becomes {} (re-encoded)",
			in:   "d: &d\n  locked: false\nrunners:\n  <<: *d\n  config: x\n",
			want: "d: &d {}\nrunners:\n  <<: *d\n  config: x\n",
		},
		{
			name: "multi-line plain and quoted values",
			in:   "runners:\n  tags: a,\n    b\n  name: \"multi\n    line\"\n  maximumTimeout:\n    3600\n",
			want: "runners:\n  name: \"multi\n    line\"\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseHelmValues([]byte(c.in))
			assert.NilError(t, err)
			out, err := m.Rewrite(c.opts)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(string(stripHeader(out)), c.want))
			assert.Check(t, strings.HasPrefix(string(out), headerPrefix))
		})
	}
}

func TestRewriteHeaderNamesTheVariable(t *testing.T) {
	m, err := ParseHelmValues([]byte("runnerRegistrationToken: x\n"))
	assert.NilError(t, err)
	out, err := m.Rewrite(RewriteOptions{VariableKey: "K8S_RUNNER_TOKEN"})
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(out), `--set runnerToken="$K8S_RUNNER_TOKEN"`))
	out, err = m.Rewrite(RewriteOptions{SecretName: "runner", VariableKey: "K8S_RUNNER_TOKEN"})
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(out), `the Secret "runner"`))
	assert.Check(t, is.Contains(string(out), `CI/CD variable K8S_RUNNER_TOKEN, and runner-registration-token set to ""`))
}
