package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// Exit codes documented in the README.
const (
	exitUsage    = 2
	exitAuth     = 3
	exitNotFound = 4
)

// TestBadInput: each case gets one clear sentence on stderr, a documented non-zero exit, nothing
// on stdout, and no change on GitLab.
func TestBadInput(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	s := tg.seed
	dir := t.TempDir()
	worldReadable := filepath.Join(dir, "token-644")
	assert.NilError(t, os.WriteFile(worldReadable, []byte(s.MaintainerToken+"\n"), 0o644))

	cases := []struct {
		name string
		tok  string
		env  []string
		args []string
		code int
		msg  string
	}{
		{"unknown runner type", s.MaintainerToken, nil, []string{"create", "--runner-type", "shared", "--project-id", "42"}, exitUsage, `--runner-type must be one of "instance_type","group_type","project_type" but got "shared"`},
		{"project runner without project", s.MaintainerToken, nil, []string{"create"}, exitUsage, "a project_type runner needs --project-id"},
		{"group runner without group", s.OwnerToken, nil, []string{"create", "--runner-type", "group_type"}, exitUsage, "a group_type runner needs --group-id"},
		{"maximum timeout too short", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--maximum-timeout", "300"}, exitUsage, "maximum timeout 300 is too short: GitLab needs at least 600 seconds"},
		{"not untagged and no tags", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--no-run-untagged"}, exitUsage, "needs at least one tag"},
		{"too many tags", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--tag-list", manyTags(51)}, exitUsage, "51 tags given: GitLab accepts at most 50"},
		{"empty tag", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--tag-list", "a,,b"}, exitUsage, "the tag list has an empty tag"},
		{"bad variable key", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--variable-key", "RUNNER-TOKEN"}, exitUsage, `variable key "RUNNER-TOKEN" is not valid: it can contain only letters, digits and '_'`},
		{"variable key too long", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--variable-key", strings.Repeat("K", 256)}, exitUsage, "the variable key is 256 characters long: GitLab accepts at most 255"},
		{"bad project path", s.MaintainerToken, nil, []string{"create", "--project-id", "platform//deploy"}, exitUsage, `--project-id "platform//deploy" is not valid`},
		{"two variable owners", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--variable-project", "42", "--variable-group", "10"}, exitUsage, "exclude each other"},
		{"instance variable with a scope", s.AdminToken, nil, []string{"create", "--runner-type", "instance_type", "--variable-instance", "--variable-environment-scope", "production"}, exitUsage, "instance variables have no environment scope"},
		{"bad access level", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--access-level", "protected"}, exitUsage, "--access-level must be one of"},
		{"bad output", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "-o", "yaml"}, exitUsage, "--output must be one of"},
		{"unknown flag", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--tags", "a"}, exitUsage, "unknown flag --tags"},
		{"runner token as access token", "glrt-t3_abcdefghijklmnopqrst", nil, []string{"create", "--project-id", "42"}, exitUsage, "GITLAB_TOKEN holds a runner authentication token (glrt-)"},
		{"registration token as access token", "GR1348941abcdefghijklmnopqrst", nil, []string{"create", "--project-id", "42"}, exitUsage, "GITLAB_TOKEN holds a legacy runner registration token"},
		{"job token as access token", "64_jobtokenvalue123456", []string{"CI_JOB_TOKEN=64_jobtokenvalue123456"}, []string{"create", "--project-id", "42"}, exitUsage, "GITLAB_TOKEN holds a CI job token"},
		{"no access token", "", nil, []string{"create", "--project-id", "42"}, exitUsage, "no access token: set GITLAB_TOKEN or pass --token-file"},
		{"world-readable token file", "", nil, []string{"create", "--project-id", "42", "--token-file", worldReadable}, exitUsage, "can be read or written by users other than its owner (mode 0644)"},
		{"missing token file", "", nil, []string{"create", "--project-id", "42", "--token-file", filepath.Join(dir, "nope")}, exitUsage, "cannot read --token-file"},
		{"plain http to a remote host", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--gitlab-url", "http://gitlab.example.com"}, exitUsage, "uses plain http"},
		{"not a URL", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--gitlab-url", "ftp://gitlab.example.com"}, exitUsage, "is not valid: expected an http(s) URL"},
		{"missing CA file", s.MaintainerToken, nil, []string{"create", "--project-id", "42", "--ca-file", filepath.Join(dir, "ca.pem")}, exitUsage, "cannot read the CA file"},
		{"unknown project", s.MaintainerToken, nil, []string{"create", "--project-id", "platform/nope"}, exitNotFound, "project platform/nope was not found (404)"},
		{"developer cannot create", s.DeveloperToken, nil, []string{"create", "--project-id", "42"}, exitAuth, "needs the Maintainer role on the project"},
		{"maintainer cannot create group runner", s.MaintainerToken, nil, []string{"create", "--runner-type", "group_type", "--group-id", "platform", "--variable-project", "42"}, exitAuth, "Owner role (groups)"},
		{"read_api token", s.ReadAPIToken, nil, []string{"create", "--project-id", "42"}, exitAuth, "insufficient_scope"},
		{"expired token", s.ExpiredToken, nil, []string{"create", "--project-id", "42"}, exitAuth, "401 Unauthorized: Token is expired"},
		{"revoked token", s.RevokedToken, nil, []string{"create", "--project-id", "42"}, exitAuth, "Token was revoked"},
		{"negative rotate window", s.MaintainerToken, nil, []string{"rotate", "--project-id", "42", "--if-expiring-within=-1h"}, exitUsage, "--if-expiring-within -1h is negative: expected a duration such as 72h or 7d."},
		{"bad duration", s.MaintainerToken, nil, []string{"rotate", "--project-id", "42", "--if-expiring-within", "3 days"}, exitUsage, "--if-expiring-within"},
		{"rotate without target", s.MaintainerToken, nil, []string{"rotate"}, exitUsage, "no variable named"},
		{"rotate a missing variable", s.MaintainerToken, nil, []string{"rotate", "--project-id", "42"}, exitNotFound, "does not exist: create the runner and store its token first"},
		{"use-runner-token without the variable", s.MaintainerToken, nil, []string{"rotate", "--project-id", "42", "--use-runner-token"}, exitUsage, "reads the current runner token from $RUNNER_TOKEN, which is empty here"},
		{"prune without owner", s.MaintainerToken, nil, []string{"prune"}, exitUsage, "prune needs exactly one of"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tg.writes()
			res := tg.run(t, tc.tok, tc.env, tc.args...)
			res.Assert(t, icmd.Expected{ExitCode: tc.code})
			assert.Check(t, is.Contains(res.Stderr(), tc.msg))
			assert.Check(t, is.Equal(res.Stdout(), ""), "bad input prints nothing on stdout")
			// One sentence: the error line starts with the program name and ends with a full stop.
			last := lastLine(res.Stderr())
			assert.Check(t, strings.HasPrefix(last, "runner-bootstrap: ") && strings.HasSuffix(last, "."), "error line: %q", last)
			assert.Check(t, is.Equal(tg.writes(), before), "bad input must not change GitLab")
		})
	}
	assert.Check(t, len(cases) >= 30)
	assert.Check(t, is.Len(tg.fake.Runners(), 0))
	assert.Check(t, is.Len(tg.fake.Variables(), 0))
}

func manyTags(n int) string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = "tag" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	return strings.Join(tags, ",")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
