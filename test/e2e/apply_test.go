package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

type applyReport struct {
	Plan []struct {
		Entry    string `json:"entry"`
		Action   string `json:"action"`
		Result   string `json:"result"`
		RunnerID int64  `json:"runner_id"`
	} `json:"plan"`
	Summary struct {
		DryRun  bool           `json:"dry_run"`
		Planned map[string]int `json:"planned"`
		Results map[string]int `json:"results"`
		Failed  int            `json:"failed"`
	} `json:"summary"`
}

func decodeApply(t *testing.T, r *icmd.Result) applyReport {
	t.Helper()
	var out applyReport
	assert.NilError(t, json.Unmarshal([]byte(r.Stdout()), &out), "stdout: %s\nstderr: %s", r.Stdout(), r.Stderr())
	return out
}

func writeFleet(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fleet.yaml")
	assert.NilError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// TestApplyFleet: a dry run changes nothing, an apply creates every runner and stores its
// token, and a re-apply writes nothing.
func TestApplyFleet(t *testing.T) {
	tg := newTarget(t)
	tok := tg.seed.MaintainerToken
	var b strings.Builder
	b.WriteString("runners:\n")
	keys := []string{"E2E_FLEET_A", "E2E_FLEET_B", "E2E_FLEET_C", "E2E_FLEET_D", "E2E_FLEET_E"}
	for i, k := range keys {
		fmt.Fprintf(&b, "  - project_id: %s\n    description: e2e fleet %d\n    tag_list: [docker, e2e]\n    variable: {key: %s}\n", deployProject(), i, k)
	}
	path := writeFleet(t, b.String())
	t.Cleanup(func() {
		for _, k := range keys {
			tg.run(t, tok, nil, "delete", "--project-id", deployProject(), "--variable-key", k)
		}
	})

	writes := tg.writes()
	dry := tg.run(t, tok, nil, "apply", "--file", path, "--dry-run")
	dry.Assert(t, icmd.Expected{Out: "plan: 5 to create, 0 to update, 0 to replace, 0 unchanged, 0 to delete, 0 failed; dry run: nothing was changed"})
	assert.Check(t, is.Regexp(regexp.QuoteMeta(path)+`:2 +create +new +project `, dry.Stdout()))
	assert.Check(t, is.Equal(tg.writes(), writes), "a dry run writes nothing")
	if tg.fake != nil {
		assert.Check(t, is.Len(tg.fake.Runners(), 0))
	}

	r := tg.run(t, tok, nil, "apply", "--file", path, "-o", "json")
	r.Assert(t, icmd.Success)
	got := decodeApply(t, r)
	assert.Check(t, is.Equal(got.Summary.Results["created"], 5))
	assert.Check(t, is.Contains(r.Stderr(), "apply finished in"))
	for i, it := range got.Plan {
		assert.Check(t, is.Equal(it.Result, "created"))
		tg.storedOK(t, "project", tg.seed.DeployProjectID, keys[i], "*", it.RunnerID)
	}

	writes = tg.writes()
	again := tg.run(t, tok, nil, "apply", "--file", path)
	again.Assert(t, icmd.Expected{Out: "nothing was written: every runner and variable is up to date"})
	assert.Check(t, is.Contains(again.Stdout(), "0 created, 0 updated, 0 replaced, 5 unchanged"))
	assert.Check(t, is.Equal(tg.writes(), writes), "a re-apply writes nothing")
}

// TestApplyBadManifest: a manifest with a mistake is refused whole, at its line, with exit
// code 2, before any request reaches GitLab.
func TestApplyBadManifest(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	path := writeFleet(t, `runners:
  - project_id: 42
    description: fine
    variable: {key: GOOD}
  - project_id: 42
    maximum_timeout: 300
    tags: [docker]
`)
	tg.fake.ResetRequests()
	r := tg.run(t, tg.seed.MaintainerToken, nil, "apply", "--file", path)
	r.Assert(t, icmd.Expected{ExitCode: exitUsage})
	assert.Check(t, is.Contains(r.Stderr(), path+" has 2 errors; nothing was changed"))
	assert.Check(t, is.Contains(r.Stderr(), path+":6: runners[1].maximum_timeout is 300: GitLab needs at least 600 seconds"))
	assert.Check(t, is.Contains(r.Stderr(), path+":7: runners[1].tags is not a known key (did you mean tag_list?)"))
	assert.Check(t, is.Equal(r.Stdout(), ""))
	assert.Check(t, is.Len(tg.fake.Requests(), 0), "nothing reached GitLab")
	assert.Check(t, is.Len(tg.fake.Runners(), 0))
}

// TestApplyPartialFailure: one entry GitLab refuses does not stop the others; exit code 1 and
// the table says which.
func TestApplyPartialFailure(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	path := writeFleet(t, `runners:
  - project_id: 42
    variable: {key: ONE}
  - project_id: platform/runners/fleet
    variable: {key: TWO}
  - project_id: 42
    variable: {key: THREE}
`)
	// The maintainer of platform/deploy cannot see platform/runners/fleet.
	r := tg.run(t, tg.seed.MaintainerToken, nil, "apply", "--file", path)
	r.Assert(t, icmd.Expected{ExitCode: 1, Err: "1 of 3 plan items failed; the others were applied"})
	assert.Check(t, is.Contains(r.Stdout(), "failed"))
	assert.Check(t, is.Contains(r.Stdout(), "applied: 2 created"))
	assert.Check(t, is.Len(tg.fake.Runners(), 2))
}
