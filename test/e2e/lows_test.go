package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// TestSmallTrustBoundaries: the Low list, each a bad input refused in one sentence
// with nothing changed, or an answer not trusted.
func TestSmallTrustBoundaries(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken

	// A token file readable by its group is refused, as the README says.
	tf := filepath.Join(t.TempDir(), "token")
	assert.NilError(t, os.WriteFile(tf, []byte(tok+"\n"), 0o640))
	assert.NilError(t, os.Chmod(tf, 0o640))
	tg.run(t, "", nil, "status", "--project-id", "42", "--token-file", tf).Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "can be read or written by users other than its owner (mode 0640)"})

	// Keys that break jobs or leak.
	for _, key := range []string{"PATH", "HOME", "GITLAB_TOKEN", "CI_JOB_TOKEN", "GITLAB_USER"} {
		tg.run(t, tok, nil, "create", "--project-id", "42", "--variable-key", key).Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "variable key " + key + " is refused"})
	}

	// A malformed --project-id is named as --project-id.
	for _, ref := range []string{"platform/deploy/", "42?sudo=1"} {
		for _, cmd := range []string{"rotate", "status", "delete", "create"} {
			tg.run(t, tok, nil, cmd, "--project-id", ref).Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "--project-id " + `"` + ref + `"` + " is not valid"})
		}
	}
	assert.Check(t, is.Equal(tg.writes(), 0))

	// --log-format json covers the final error line too.
	res := tg.run(t, tok, nil, "rotate", "--project-id", "42", "--log-format", "json")
	assert.Check(t, res.ExitCode != 0)
	found := false
	for l := range strings.SplitSeq(strings.TrimSpace(res.Stderr()), "\n") {
		var entry map[string]any
		assert.Check(t, json.Unmarshal([]byte(l), &entry), "not JSON: %s", l)
		if entry["level"] == "error" {
			found = true
			assert.Check(t, is.Contains(entry["msg"], "does not exist"))
			assert.Check(t, is.Equal(entry["exit_code"], float64(4)))
		}
	}
	assert.Check(t, found, "the final error is not a JSON log entry:\n%s", res.Stderr())
}

// TestCreatedRunnerWithoutATokenIsNotStored: a 201 from POST /user/runners whose token is not a
// glrt- runner token (empty, another shape) is an error; nothing is stored.
func TestCreatedRunnerWithoutATokenIsNotStored(t *testing.T) {
	for _, tokenJSON := range []string{`""`, `"GR1348941abcdefghijklmnop"`, `null`} {
		fake := gitlabfake.New()
		seed := fake.Seed()
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == "/api/v4/user/runners" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				_, _ = w.Write([]byte(`{"id": 777, "token": ` + tokenJSON + `, "token_expires_at": null}`))
				return
			}
			fake.ServeHTTP(w, r)
		}))
		fake.SetBaseURL(ts.URL)
		tg := &target{url: ts.URL, fake: fake, seed: seed, secrets: []string{seed.MaintainerToken}}
		res := tg.run(t, seed.MaintainerToken, nil, "create", "--project-id", "42")
		res.Assert(t, icmd.Expected{ExitCode: 1, Err: "without a runner authentication token (glrt-), so nothing was stored"})
		assert.Check(t, is.Len(fake.Variables(), 0), "token %s was stored", tokenJSON)
		ts.Close()
		fake.Close()
	}
}
