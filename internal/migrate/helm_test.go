package migrate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// The fake tokens of the test files, kept short of the lengths secret scanners look for.
const (
	fakeRegistrationToken = "GR1348941fake_example0"
	fakeRunnerToken       = "glrt-t3_fake_example0"
)

// helmCases are the values files under testdata/helm, each with golden files for the parsed
// settings (.spec.golden) and the migrated file (.migrated.golden, and .migrated-secret.golden
// with RewriteOptions.SecretName).
var helmCases = []string{
	"chart-runners",
	"gitlab-page-toplevel",
	"anchors",
	"anchor-on-legacy",
	"quoting",
	"missing-keys",
	"both-places",
	"literal-runner-token",
	"flow-style",
	"only-legacy-under-runners",
}

// parsed is what a test compares of a HelmMigration: its fields and its runner.
type parsed struct {
	*HelmMigration
	Runner spec.Runner `json:"runner"`
}

func readCase(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "helm", name+".yaml"))
	assert.NilError(t, err)
	return data
}

func TestParseHelmValues(t *testing.T) {
	for _, name := range helmCases {
		t.Run(name, func(t *testing.T) {
			data := readCase(t, name)
			m, err := ParseHelmValuesNamed(name+".yaml", data)
			assert.NilError(t, err)
			out, err := json.MarshalIndent(parsed{m, m.Runner()}, "", "  ")
			assert.NilError(t, err)
			golden.Assert(t, string(out)+"\n", filepath.Join("helm", name+".spec.golden"))
			assertNoToken(t, string(out))
		})
	}
}

func TestRewrite(t *testing.T) {
	variants := []struct {
		suffix string
		opts   RewriteOptions
	}{
		{"migrated", RewriteOptions{}},
		{"migrated-secret", RewriteOptions{SecretName: "gitlab-runner-secret", VariableKey: "DEPLOY_RUNNER_TOKEN"}},
	}
	for _, name := range helmCases {
		for _, v := range variants {
			t.Run(name+"/"+v.suffix, func(t *testing.T) {
				data := readCase(t, name)
				m, err := ParseHelmValuesNamed(name+".yaml", data)
				assert.NilError(t, err)
				out, err := m.Rewrite(v.opts)
				assert.NilError(t, err)
				golden.Assert(t, string(out), filepath.Join("helm", name+"."+v.suffix+".golden"))
				assertNoToken(t, string(out))

				// The migrated file has no legacy key left, and the chart finds the token.
				again, err := ParseHelmValuesNamed(name+".yaml", out)
				assert.NilError(t, err)
				assert.Check(t, is.Len(again.LegacyKeys, 0))
				assert.Check(t, !again.RegistrationTokenSet)
				if v.opts.SecretName != "" {
					assert.Check(t, is.Equal(again.SecretName, v.opts.SecretName))
				}
				// The other settings are untouched.
				assert.Check(t, is.Equal(again.GitLabURL, m.GitLabURL))
				assert.Check(t, is.Equal(again.Runner().Description, m.Runner().Description))

				// Idempotent: a migrated file comes back byte for byte.
				twice, err := again.Rewrite(v.opts)
				assert.NilError(t, err)
				assert.Check(t, is.Equal(string(twice), string(out)))
			})
		}
	}
}

func TestRewriteKeepsExistingSecret(t *testing.T) {
	m, err := ParseHelmValues(readCase(t, "literal-runner-token"))
	assert.NilError(t, err)
	assert.Check(t, m.UsesSecret())
	out, err := m.Rewrite(RewriteOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(out), "secret: gitlab-runner-deploy\n"))
	assert.Check(t, is.Contains(string(out), `Secret "gitlab-runner-deploy"`))
	assert.Check(t, !strings.Contains(string(out), "runnerToken:"))
}

func TestRewritePlaceholderRunnerTokenIsKept(t *testing.T) {
	data := []byte("gitlabUrl: https://gitlab.example.com\nrunnerToken: ${RUNNER_TOKEN}\nrunners:\n  tags: a\n")
	m, err := ParseHelmValues(data)
	assert.NilError(t, err)
	assert.Check(t, m.RunnerTokenSet)
	assert.Check(t, is.Contains(strings.Join(m.Warnings, "\n"), "runnerToken is a placeholder"))
	out, err := m.Rewrite(RewriteOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(out), "runnerToken: ${RUNNER_TOKEN}\n"))
	assert.Check(t, !strings.Contains(string(out), "tags:"))
}

func TestRewriteEmptyFile(t *testing.T) {
	// A byte order mark may only open a file: the header takes its place.
	for _, data := range []string{"", "# nothing yet\n", "~\n", "\ufeff", "\ufeffgitlabUrl: x\n"} {
		m, err := ParseHelmValues([]byte(data))
		assert.NilError(t, err)
		assert.Check(t, is.DeepEqual(m.Runner(), spec.Runner{RunUntagged: true, Locked: true}))
		out, err := m.Rewrite(RewriteOptions{SecretName: "runner-secret"})
		assert.NilError(t, err)
		again, err := ParseHelmValues(out)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(again.SecretName, "runner-secret"), "input %q gave:\n%s", data, out)
	}
}

func TestDiff(t *testing.T) {
	data := readCase(t, "chart-runners")
	m, err := ParseHelmValues(data)
	assert.NilError(t, err)
	out, err := m.Rewrite(RewriteOptions{})
	assert.NilError(t, err)
	d := Diff(data, out)
	golden.Assert(t, d, filepath.Join("helm", "chart-runners.diff.golden"))
	assertNoToken(t, d)
	assert.Check(t, is.Equal(Diff(out, out), ""))
}

func TestDiffRedactsTokensWithoutPrefix(t *testing.T) {
	old := []byte("gitlabUrl: https://gitlab.example.com\nrunnerRegistrationToken: \"oldStyleToken123456\"\nconcurrent: 1\n")
	d := Diff(old, []byte("gitlabUrl: https://gitlab.example.com\nconcurrent: 1\n"))
	assert.Check(t, is.Contains(d, "-runnerRegistrationToken: [redacted]\n"))
	assert.Check(t, !strings.Contains(d, "oldStyleToken123456"))
}

func TestUnprefixedTokenRepeatedElsewhere(t *testing.T) {
	data := []byte("runnerRegistrationToken: oldStyleToken123456\nrunners:\n  name: oldStyleToken123456\n  tags: a,oldStyleToken123456\n")
	m, err := ParseHelmValues(data)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(m.Runner().Description, "[registration token]"))
	assert.Check(t, is.DeepEqual(m.Runner().TagList, []string{"a", "[registration token]"}))
	out, err := m.Rewrite(RewriteOptions{})
	assert.NilError(t, err)
	d := Diff(data, out)
	assertNoToken(t, d)
	assert.Check(t, is.Contains(d, " runners:\n   name: [token]\n-  tags: a,[token]\n"), d)
}

func TestDiffShapes(t *testing.T) {
	lines := func(n int, f func(int) string) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			b.WriteString(f(i) + "\n")
		}
		return b.String()
	}
	old := lines(20, func(i int) string { return "line " + string(rune('a'+i)) })
	// Two changes far apart make two hunks; a line added near the second joins its hunk.
	repl := strings.Replace(strings.Replace(old, "line c\n", "line C\n", 1), "line r\n", "", 1) + "tail\n"
	golden.Assert(t, Diff([]byte(old), []byte(repl)), filepath.Join("helm", "shapes.diff.golden"))
	assert.Check(t, is.Equal(Diff(nil, []byte("a\n")), "--- original\n+++ migrated\n@@ -0,0 +1 @@\n+a\n"))
	assert.Check(t, is.Equal(Diff([]byte("a\n"), nil), "--- original\n+++ migrated\n@@ -1 +0,0 @@\n-a\n"))
}

func TestParseHelmValuesErrors(t *testing.T) {
	cases := []struct {
		name, data, want string
	}{
		{"quoted yes", "runners:\n  locked: \"yes\"\n", `values.yaml:2: runners.locked is "yes": expected true or false`},
		{"not a boolean", "runners:\n  runUntagged: maybe\n", `values.yaml:2: runners.runUntagged is "maybe": expected true or false`},
		{"quoted false", "protected: 'false'\n", `values.yaml:1: protected is the string "false": expected true or false without quotes`},
		{"number for a boolean", "runners:\n  locked: 1\n", `values.yaml:2: runners.locked is "1": expected true or false`},
		{"list for a boolean", "runners:\n  locked: [true]\n", `values.yaml:2: runners.locked is a list: expected true or false`},
		{"timeout with a unit", "runners:\n  tags: a\n  maximumTimeout: 1h\n", `values.yaml:3: runners.maximumTimeout is "1h": expected a number of seconds such as 3600`},
		{"negative timeout", "maximumTimeout: -5\n", `values.yaml:1: maximumTimeout is "-5": expected a number of seconds`},
		{"float timeout", "maximumTimeout: 3600.5\n", `values.yaml:1: maximumTimeout is "3600.5": expected a number of seconds`},
		{"hex timeout", "maximumTimeout: 0x10\n", `values.yaml:1: maximumTimeout is "0x10": expected a plain number of seconds`},
		{"tags mapping", "runners:\n  tags:\n    a: b\n", `values.yaml:2: runners.tags is a mapping: expected a comma-separated string such as "docker,linux" or a list`},
		{"tags nested list", "tags:\n  - [a]\n", `values.yaml:1: tags has an entry that is a list: expected tag names`},
		{"runners string", "runners: docker\n", `values.yaml:1: runners is the string "docker": expected a mapping of runner settings`},
		{"gitlabUrl mapping", "gitlabUrl:\n  host: x\n", `values.yaml:1: gitlabUrl is a mapping: expected a URL such as https://gitlab.example.com`},
		{"file is a list", "- a\n- b\n", `values.yaml:1: the file is a list: expected a mapping of chart values`},
		{"both places differ", "tags: \"k8s\"\nrunners:\n  tags: docker\n", `values.yaml:3: runners.tags is "docker" but tags on line 1 is "k8s": set it in one place only (the chart reads runners.tags)`},
		{"both places differ bool", "locked: true\nrunners:\n  locked: false\n", `values.yaml:3: runners.locked is "false" but locked on line 1 is "true": set it in one place only`},
		{"duplicate key", "runners:\n  locked: true\n  tags: a\n  locked: false\n", `values.yaml:4: runners.locked is set twice (first on line 2): expected one value`},
		{"duplicate top key", "gitlabUrl: a\ngitlabUrl: b\n", `values.yaml:2: gitlabUrl is set twice (first on line 1): expected one value`},
		{"not yaml", "runners:\n  tags: [a\n", `values.yaml is not valid YAML (`},
		{"two documents", "gitlabUrl: a\n---\ngitlabUrl: b\n", `values.yaml holds more than one YAML document: expected one document of chart values`},
		{"token for a boolean", "runners:\n  locked: " + fakeRunnerToken + "\n", `values.yaml:2: runners.locked is [runner authentication token]: expected true or false`},
		{"token for a timeout", "maximumTimeout: '" + fakeRegistrationToken + "'\n", `values.yaml:1: maximumTimeout is [registration token]: expected a number of seconds`},
		{"unknown alias", "runners: *nope\n", `values.yaml is not valid YAML (`},
		{"utf-16", "\xfe\xff", `values.yaml is encoded in UTF-16: expected a UTF-8 values file`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseHelmValues([]byte(c.data))
			assert.ErrorContains(t, err, c.want)
			assertOneSentence(t, err)
			assertNoToken(t, err.Error())
		})
	}
}

func TestParseHelmValuesNamesTheFile(t *testing.T) {
	_, err := ParseHelmValuesNamed("deploy/runner-values.yaml", []byte("runners:\n  locked: nope\n"))
	assert.ErrorContains(t, err, "deploy/runner-values.yaml:2: runners.locked")
}

func TestRewriteErrors(t *testing.T) {
	cases := []struct {
		name, data string
		opts       RewriteOptions
		want       string
	}{
		{"bad secret name", "gitlabUrl: a\n", RewriteOptions{SecretName: "Gitlab_Runner"}, `Secret name "Gitlab_Runner" is not valid: expected a Kubernetes name`},
		{"token as secret name", "gitlabUrl: a\n", RewriteOptions{SecretName: fakeRunnerToken}, `Secret name [runner authentication token] is not valid`},
		{"bad variable key", "gitlabUrl: a\n", RewriteOptions{VariableKey: "RUNNER-TOKEN"}, `variable key "RUNNER-TOKEN" is not valid: expected letters, digits and '_'`},
		{"token reused by alias", "runnerRegistrationToken: &tok " + fakeRegistrationToken + "\nenvVars:\n  - name: T\n    value: *tok\n", RewriteOptions{}, `values.yaml:1: runnerRegistrationToken is reused elsewhere through the alias *tok: remove those uses first`},
		{"runners from a merge", "x: &x\n  runners:\n    tags: a\n<<: *x\n", RewriteOptions{SecretName: "s"}, `runners comes from a YAML merge key (<<): set runners.secret by hand`},
		{"runners alias", "x: &r\n  tags: a\nrunners: *r\n", RewriteOptions{SecretName: "s"}, `values.yaml:3: runners is a YAML alias: set runners.secret by hand`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseHelmValues([]byte(c.data))
			assert.NilError(t, err)
			_, err = m.Rewrite(c.opts)
			assert.ErrorContains(t, err, c.want)
			assertOneSentence(t, err)
			assertNoToken(t, err.Error())
		})
	}
}

// TestParseHelmValuesDefaults pins the legacy defaults the chart and gitlab-runner applied.
func TestParseHelmValuesDefaults(t *testing.T) {
	cases := []struct {
		name, data string
		want       spec.Runner
	}{
		{"nothing set", "gitlabUrl: x\n", spec.Runner{RunUntagged: true, Locked: true}},
		{"tags, no runUntagged", "runners:\n  tags: a,b\n", spec.Runner{TagList: []string{"a", "b"}, Locked: true}},
		{"runUntagged false without tags", "runners:\n  runUntagged: false\n", spec.Runner{RunUntagged: true, Locked: true}},
		{"empty strings are unset", "tags: \"\"\nmaximumTimeout: \"\"\nlocked: \"\"\n", spec.Runner{RunUntagged: true, Locked: true}},
		{"yaml 1.1 booleans", "runners:\n  locked: off\n  protected: yes\n", spec.Runner{RunUntagged: true, AccessLevel: spec.RefProtected}},
		{"not protected", "runners:\n  protected: false\n", spec.Runner{RunUntagged: true, Locked: true, AccessLevel: spec.NotProtected}},
		{"timeout as string", "runners:\n  maximumTimeout: \" 900 \"\n", spec.Runner{RunUntagged: true, Locked: true, MaximumTimeout: 900}},
		{"zero timeout", "runners:\n  maximumTimeout: 0\n", spec.Runner{RunUntagged: true, Locked: true}},
		{"tags list with commas", "runners:\n  tags: [\"a, b\", c, '']\n", spec.Runner{TagList: []string{"a", "b", "c"}, Locked: true}},
		{"same in both places", "tags: a,b\nrunners:\n  tags: [a, b]\n", spec.Runner{TagList: []string{"a", "b"}, Locked: true}},
		{"merge key", "d: &d\n  locked: false\nrunners:\n  <<: *d\n  locked: true\n", spec.Runner{RunUntagged: true, Locked: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseHelmValues([]byte(c.data))
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(m.Runner(), c.want))
		})
	}
}

// assertNoToken checks that none of the test files' fake tokens leaked into s.
func assertNoToken(t *testing.T, s string) {
	t.Helper()
	for _, tok := range []string{fakeRegistrationToken, fakeRunnerToken, "oldStyleToken123456", "glpat-fake_example0", "glcbt-fake_example0"} {
		assert.Check(t, !strings.Contains(s, tok), "a token leaked into:\n%s", s)
	}
	// Every token planted in this package's tests and testdata ends so; its secret half must
	// never come back, whatever prefix it had.
	assert.Check(t, !strings.Contains(s, "fake_example0"), "a token leaked into:\n%s", s)
	assert.Check(t, !plantedTokenRE.MatchString(s), "a token leaked into:\n%s", s)
}

// plantedTokenRE finds the tokens a test's input holds. It is written out here on purpose, not
// taken from the token table: it is the oracle that table is judged by.
var plantedTokenRE = regexp.MustCompile(`[A-Za-z0-9_\-]*(?:glrtr|glrt|glpat|glcbt|gldt|glptt|gloas|glft|glimt|glagent|glsoat|glffct|glwt)-[A-Za-z0-9_.\-]+|GR1348941[A-Za-z0-9_\-]+`)

// assertOneSentence checks an error is a usage error of one line saying what is expected.
func assertOneSentence(t *testing.T, err error) {
	t.Helper()
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage))
	assert.Check(t, !strings.Contains(err.Error(), "\n"), "more than one line: %q", err)
	assert.Check(t, strings.Contains(err.Error(), "expected") || strings.Contains(err.Error(), "by hand") || strings.Contains(err.Error(), "one place only") || strings.Contains(err.Error(), "first"), "no expectation in %q", err)
}

// TestDiffHidesUnprefixedTokens: a registration token without the GR1348941 prefix (older
// GitLab) written where no key shares its line still never shows in the diff.
func TestDiffHidesUnprefixedTokens(t *testing.T) {
	for _, in := range []string{
		"gitlabUrl: https://gitlab.example.com\nrunnerRegistrationToken:\n  oldStyleToken123456\nrunners:\n  tags: a\n",
		"gitlabUrl: https://gitlab.example.com\nrunnerRegistrationToken: >-\n  oldStyleToken123456\nrunners:\n  tags: a\n",
		"{gitlabUrl: https://gitlab.example.com, runnerRegistrationToken: oldStyleToken123456, runners: {tags: a}}\n",
	} {
		m, err := ParseHelmValues([]byte(in))
		assert.NilError(t, err, in)
		migrated, err := m.Rewrite(RewriteOptions{})
		assert.NilError(t, err, in)
		d := m.Diff(migrated)
		assert.Check(t, d != "", in)
		assert.Check(t, !strings.Contains(d, "oldStyleToken123456"), "%s\n%s", in, d)
	}
}
