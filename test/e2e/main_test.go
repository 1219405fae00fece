// Package e2e runs the built runner-bootstrap binary against the fake GitLab (or, when
// GITLAB_URL and GITLAB_TOKEN are set, a real one) and checks exit codes, output wording,
// what changed on GitLab, and that no token ever appears in any output.
package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/testbin"
)

var binary string

func TestMain(m *testing.M) { testbin.Main(m, "e2e", &binary) }

// target is the GitLab the tests talk to.
type target struct {
	url  string
	fake *gitlabfake.Server // nil against a real GitLab
	seed gitlabfake.Seed
	// secrets are values that must never appear in any output.
	secrets []string
}

// newTarget starts a fake GitLab, or uses the real one named by GITLAB_URL/GITLAB_TOKEN.
func newTarget(t *testing.T) *target {
	t.Helper()
	if u, tok := os.Getenv("GITLAB_URL"), os.Getenv("GITLAB_TOKEN"); u != "" && tok != "" {
		return realTarget(t, u, tok)
	}
	fake, seed := gitlabfake.NewTest(t)
	tg := &target{url: seed.URL, fake: fake, seed: seed}
	tg.secrets = append(tg.secrets, seed.AdminToken, seed.OwnerToken, seed.MaintainerToken, seed.DeveloperToken, seed.ReadAPIToken)
	return tg
}

// needFake skips a test that inspects or manipulates the server's internals.
func (tg *target) needFake(t *testing.T) {
	t.Helper()
	if tg.fake == nil {
		t.Skip("this case inspects the fake GitLab's state (token values, injected faults); it cannot run against a real GitLab")
	}
}

// run runs the binary with a clean environment: only what the case sets, so a CI job's own
// CI_* and GITLAB_* variables never leak in.
func (tg *target) run(t *testing.T, tok string, extraEnv []string, args ...string) *icmd.Result {
	t.Helper()
	envv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CI_SERVER_URL=" + tg.url}
	if tok != "" {
		envv = append(envv, "GITLAB_TOKEN="+tok)
	}
	envv = append(envv, extraEnv...)
	res := icmd.RunCmd(icmd.Command(binary, args...), icmd.WithEnv(envv...))
	tg.assertNoSecrets(t, res.Stdout()+res.Stderr())
	return res
}

var tokenShape = regexp.MustCompile(`glrt-[A-Za-z0-9_.\-]{6,}|glpat-[A-Za-z0-9_\-]{6,}|GR1348941[A-Za-z0-9_\-]{6,}`)

// assertNoSecrets fails when output holds a token shape or any token value the server knows.
func (tg *target) assertNoSecrets(t *testing.T, out string) {
	t.Helper()
	assert.Assert(t, !tokenShape.MatchString(out), "output holds a token-shaped string:\n%s", out)
	secrets := append([]string{}, tg.secrets...)
	if tg.fake != nil {
		for _, r := range tg.fake.Runners() {
			secrets = append(secrets, r.Token)
		}
		for _, v := range tg.fake.Variables() {
			secrets = append(secrets, v.Value)
		}
	}
	for _, s := range secrets {
		if len(s) >= 8 {
			assert.Assert(t, !strings.Contains(out, s), "output holds a secret value:\n%s", out)
		}
	}
}

// writes is the number of successful writes GitLab has seen (fake only; -1 otherwise).
func (tg *target) writes() int {
	if tg.fake == nil {
		return -1
	}
	return tg.fake.Writes()
}

// deleteAfter removes what a case created (on a real GitLab; the fake is thrown away anyway).
func (tg *target) deleteAfter(t *testing.T, args ...string) {
	t.Helper()
	if tg.fake != nil {
		return
	}
	t.Cleanup(func() {
		tg.run(t, tg.seed.MaintainerToken, nil, append([]string{"delete"}, args...)...).Assert(t, icmd.Success)
	})
}
