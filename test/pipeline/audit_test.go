package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// TestAuditComponent runs the audit component over a project holding one medium finding (a
// managed variable that is not protected): it fails the job at fail_on medium (exit 20) and
// passes at the default (high), and keeps both reports as artifacts either way.
func TestAuditComponent(t *testing.T) {
	f := startFake(t)
	token := f.Env["MAINTAINER_TOKEN"]
	projectID := fmt.Sprintf("CI_PROJECT_ID=%d", deployProjectID)
	p := newProject(t, "include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/create-runner@$CI_COMMIT_SHA\n    inputs:\n      variable_protected: false\n")
	p.run(t, f, token, "--variable", projectID).Assert(t, icmd.Success)

	audit := func(failOn string) string {
		return "include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/audit@$CI_COMMIT_SHA\n    inputs:\n      fail_on: " + failOn + "\n"
	}
	p.setCI(t, audit("medium"))
	res := p.run(t, f, token, "--variable", projectID)
	assert.Check(t, res.ExitCode != 0, "a medium finding must fail the job at fail_on medium:\n%s", res.Combined())
	assert.Check(t, is.Contains(res.Combined(), "variable-not-protected"))
	assert.Check(t, is.Contains(res.Combined(), "FAIL 20"), "the job fails with the audit's exit code 20")
	md := artifact(t, p, "runner-audit.md")
	assert.Check(t, is.Contains(md, "`variable-not-protected`"))
	assert.Check(t, is.Contains(artifact(t, p, "runner-audit.html"), "<code>variable-not-protected</code>"))
	assertNoSecrets(t, p, res.Combined()+md, token)

	p.setCI(t, audit("high"))
	res = p.run(t, f, token, "--variable", projectID)
	res.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(res.Combined(), "medium 1"))
	for _, r := range f.Requests(t) {
		if strings.Contains(r.Path, "/variables") || strings.HasPrefix(r.Path, "/api/graphql") || r.Method == "GET" {
			continue
		}
		// Only create-runner's own writes happened; the audits wrote nothing.
		assert.Check(t, r.Method == "POST" && (r.Path == "/api/v4/user/runners" || strings.HasSuffix(r.Path, "/variables")), "unexpected %s %s", r.Method, r.Path)
	}
}

// artifact reads a file the job kept as an artifact.
func artifact(t *testing.T, p *project, name string) string {
	t.Helper()
	matches, err := filepath.Glob(p.dir.Join(".gitlab-ci-local", "artifacts", "*", name))
	assert.NilError(t, err)
	assert.Assert(t, is.Len(matches, 1), "artifact %s: %v", name, matches)
	b, err := os.ReadFile(matches[0])
	assert.NilError(t, err)
	return string(b)
}
