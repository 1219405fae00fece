package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// dryPlan is the JSON every --dry-run prints: the plan's items and the summary.
type dryPlan struct {
	Plan []struct {
		Entry    string `json:"entry"`
		Action   string `json:"action"`
		RunnerID int64  `json:"runner_id"`
		Variable string `json:"variable"`
		Reason   string `json:"reason"`
	} `json:"plan"`
	Summary struct {
		DryRun  bool           `json:"dry_run"`
		Planned map[string]int `json:"planned"`
	} `json:"summary"`
}

func decodeDry(t *testing.T, r *icmd.Result) dryPlan {
	t.Helper()
	var out dryPlan
	assert.NilError(t, json.Unmarshal([]byte(r.Stdout()), &out), "stdout: %s\nstderr: %s", r.Stdout(), r.Stderr())
	return out
}

// TestRotateDryRunPrintsThePlan: rotate --dry-run (one variable and --all, with and without
// --if-expiring-within) prints apply's plan table with "would rotate" or "would skip" and why,
// writes nothing, and the real rotate then does what the plan said.
func TestRotateDryRunPrintsThePlan(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	tg.fake.SetRunnerTokenExpiration(100 * time.Hour)
	created := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "platform/deploy", "--variable-key", "LATER"))
	tg.fake.SetRunnerTokenExpiration(10 * time.Hour)
	tg.run(t, tok, nil, "create", "--project-id", "platform/deploy", "--variable-key", "SOON").Assert(t, icmd.Success)
	values := func() map[string]string {
		out := map[string]string{}
		for _, v := range tg.fake.Variables() {
			out[v.Key] = v.Value
		}
		return out
	}
	before := values()
	writes := tg.writes()

	dry := tg.run(t, tok, nil, "rotate", "--project-id", "platform/deploy", "--variable-key", "LATER", "--dry-run")
	dry.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(dry.Stdout(), "ENTRY   ACTION  RUNNER  VARIABLE"))
	assert.Check(t, is.Contains(dry.Stdout(), "would rotate: rotation requested"))
	assert.Check(t, is.Contains(dry.Stdout(), "0 to delete, 1 to rotate, 0 to skip, 0 failed; dry run: nothing was changed"))

	skip := decodeDry(t, tg.run(t, tok, nil, "rotate", "--project-id", "platform/deploy", "--variable-key", "LATER", "--if-expiring-within", "72h", "--dry-run", "-o", "json"))
	assert.Assert(t, is.Len(skip.Plan, 1))
	assert.Check(t, is.Equal(skip.Plan[0].Action, "skip"))
	assert.Check(t, is.Contains(skip.Plan[0].Reason, "outside the 3d window"))
	assert.Check(t, is.Equal(skip.Plan[0].RunnerID, created.RunnerID))
	assert.Check(t, skip.Summary.DryRun)

	all := tg.run(t, tok, nil, "rotate", "--all", "--project-id", "platform/deploy", "--if-expiring-within", "72h", "--dry-run")
	all.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(all.Stdout(), "would skip: the token expires in"))
	assert.Check(t, is.Contains(all.Stdout(), "would rotate: the token expires in"))
	assert.Check(t, is.Contains(all.Stdout(), "1 to rotate, 1 to skip, 0 failed; dry run: nothing was changed"))
	allJS := decodeDry(t, tg.run(t, tok, nil, "rotate", "--all", "--project-id", "platform/deploy", "--if-expiring-within", "72h", "--dry-run", "-o", "json"))
	planned := map[string]string{}
	for _, it := range allJS.Plan {
		planned[it.Variable] = it.Action
	}
	assert.Check(t, is.DeepEqual(planned, map[string]string{
		"project platform/deploy variable LATER (scope *)": "skip",
		"project platform/deploy variable SOON (scope *)":  "rotate",
	}))
	assert.Check(t, is.Equal(tg.writes(), writes), "a dry run writes nothing")
	assert.Check(t, is.DeepEqual(values(), before))

	// The real rotate --all does what the plan said.
	real := tg.run(t, tok, nil, "rotate", "--all", "--project-id", "platform/deploy", "--if-expiring-within", "72h")
	real.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(real.Stdout(), "1 rotated, 1 skipped, 0 failed"))
	after := values()
	assert.Check(t, is.Equal(after["LATER"], before["LATER"]), "the planned skip was rotated")
	assert.Check(t, after["SOON"] != before["SOON"], "the planned rotation did not happen")
}

// TestDeleteDryRunPrintsThePlan: delete --dry-run lists the runner and variable it would
// delete, writes nothing; delete then deletes exactly that; a dry run of what is gone plans
// nothing.
func TestDeleteDryRunPrintsThePlan(t *testing.T) {
	tg := newTarget(t)
	tok := tg.seed.MaintainerToken
	created := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "platform/deploy", "--variable-key", "DEPLOY_RUNNER_TOKEN"))
	writes := tg.writes()

	dry := tg.run(t, tok, nil, "delete", "--project-id", "platform/deploy", "--variable-key", "DEPLOY_RUNNER_TOKEN", "--dry-run")
	dry.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(dry.Stdout(), "deletes runner "+itoa(created.RunnerID)+" and the variable that records it"))
	assert.Check(t, is.Contains(dry.Stdout(), "0 unchanged, 1 to delete, 0 failed; dry run: nothing was changed"))
	js := decodeDry(t, tg.run(t, tok, nil, "delete", "--project-id", "platform/deploy", "--variable-key", "DEPLOY_RUNNER_TOKEN", "--dry-run", "-o", "json"))
	assert.Assert(t, is.Len(js.Plan, 1))
	assert.Check(t, is.Equal(js.Plan[0].Action, "delete"))
	assert.Check(t, is.Equal(js.Plan[0].RunnerID, created.RunnerID))
	assert.Check(t, is.Equal(js.Summary.Planned["delete"], 1))
	assert.Check(t, is.Equal(tg.writes(), writes), "a dry run writes nothing")

	real := tg.run(t, tok, nil, "delete", "--project-id", "platform/deploy", "--variable-key", "DEPLOY_RUNNER_TOKEN")
	real.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(real.Stdout(), "deleted runner "+itoa(created.RunnerID)))
	assert.Check(t, tg.writes() > writes)
	for _, r := range tg.fake.Runners() {
		assert.Check(t, r.ID != created.RunnerID, "the planned runner is gone")
	}

	writes = tg.writes()
	gone := tg.run(t, tok, nil, "delete", "--project-id", "platform/deploy", "--variable-key", "DEPLOY_RUNNER_TOKEN", "--dry-run")
	gone.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(gone.Stdout(), "nothing to delete"))
	assert.Check(t, is.Equal(tg.writes(), writes))
}

// TestDryRunRefusesAForgedVariableAsTheRealCommandDoes: a planted description naming another
// project's runner is refused by rotate, rotate --all and delete --dry-run with the real
// commands' sentence and exit code, and nothing is written.
func TestDryRunRefusesAForgedVariableAsTheRealCommandDoes(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	admin := tg.seed.AdminToken
	other := decode(t, tg.run(t, admin, nil, "create", "-o", "json", "--project-id", "other/app", "--variable-key", "APP_TOKEN"))
	tg.plant(t, tg.seed.MaintainerToken, 42, "STEAL_APP", other.RunnerID)
	writes := tg.writes()
	for _, cmd := range []string{"rotate", "delete"} {
		args := []string{cmd, "--project-id", "platform/deploy", "--variable-key", "STEAL_APP"}
		realRes := tg.run(t, admin, nil, args...)
		realRes.Assert(t, icmd.Expected{ExitCode: 5, Err: notCreatedFor})
		dry := tg.run(t, admin, nil, append(args, "--dry-run")...)
		dry.Assert(t, icmd.Expected{ExitCode: 5, Err: notCreatedFor})
		assert.Check(t, is.Equal(dry.Stderr(), realRes.Stderr()), "the dry run refuses in the same words")
	}
	all := tg.run(t, admin, nil, "rotate", "--all", "--project-id", "platform/deploy", "--dry-run")
	all.Assert(t, icmd.Expected{ExitCode: 1})
	assert.Check(t, is.Contains(all.Stdout(), notCreatedFor))
	assert.Check(t, strings.Contains(all.Stdout(), "1 failed; dry run: nothing was changed"))
	assert.Check(t, is.Equal(tg.writes(), writes))
}
