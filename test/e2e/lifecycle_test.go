package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

type statusReport struct {
	Health         string  `json:"health"`
	RunnerID       int64   `json:"runner_id"`
	Status         string  `json:"status"`
	TokenExpiresAt *string `json:"token_expires_at"`
	ExitCode       int     `json:"exit_code"`
	Managers       []struct {
		SystemID string `json:"system_id"`
	} `json:"managers"`
}

func TestRotateStatusDelete(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	created := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42", "--description", "deploy"))
	oldToken := mustVar(t, tg).Value

	rot := tg.run(t, tok, nil, "rotate", "-o", "json", "--project-id", "42")
	rot.Assert(t, icmd.Success)
	got := decode(t, rot)
	assert.Check(t, is.Equal(got.Action, "rotated"))
	assert.Check(t, is.Equal(got.RunnerID, created.RunnerID))
	tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", created.RunnerID)
	assert.Check(t, mustVar(t, tg).Value != oldToken)

	// The runner rotated itself (gitlab-runner at 75% of the token's life): rotate repairs it.
	tg.fake.RotateRunnerTokenAsRunner(created.RunnerID)
	tg.run(t, tok, nil, "rotate", "--project-id", "42").Assert(t, icmd.Expected{Out: "rotated the token of runner"})
	tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", created.RunnerID)

	// --use-runner-token: the job gets the current token from the variable itself.
	cur := mustVar(t, tg).Value
	r := tg.run(t, tok, []string{"RUNNER_TOKEN=" + cur}, "rotate", "--project-id", "42", "--use-runner-token")
	r.Assert(t, icmd.Success)
	tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", created.RunnerID)
	assert.Check(t, mustVar(t, tg).Value != cur)

	tg.fake.ContactRunner(created.RunnerID, "s_0123456789ab")
	st := tg.run(t, tok, nil, "status", "-o", "json", "--project-id", "42")
	st.Assert(t, icmd.Success)
	var rep statusReport
	assert.NilError(t, json.Unmarshal([]byte(st.Stdout()), &rep))
	assert.Check(t, is.Equal(rep.Health, "healthy"))
	assert.Check(t, is.Equal(rep.RunnerID, created.RunnerID))
	assert.Check(t, is.Len(rep.Managers, 1))
	tg.run(t, tok, nil, "status", "--project-id", "42").Assert(t, icmd.Expected{Out: "s_0123456789ab online"})

	tg.run(t, tok, nil, "delete", "--project-id", "42").Assert(t, icmd.Expected{Out: "deleted runner"})
	assert.Check(t, is.Len(tg.fake.Runners(), 0))
	assert.Check(t, is.Len(tg.fake.Variables(), 0))
	tg.run(t, tok, nil, "delete", "--project-id", "42").Assert(t, icmd.Expected{Out: "nothing to delete"})

	// status exit codes: variable missing, runner gone.
	tg.run(t, tok, nil, "status", "--project-id", "42").Assert(t, icmd.Expected{ExitCode: 12, Err: "does not exist"})
	c := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42"))
	tg.fake.DeleteRunnerDirect(c.RunnerID)
	tg.run(t, tok, nil, "status", "--project-id", "42").Assert(t, icmd.Expected{ExitCode: 11, Err: "no longer exists"})
}

func TestRotateIfExpiringWithinAndStatusWarning(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	tg.fake.SetRunnerTokenExpiration(100 * time.Hour)
	tg.run(t, tok, nil, "create", "--project-id", "42").Assert(t, icmd.Success)

	tg.run(t, tok, nil, "rotate", "--project-id", "42", "--if-expiring-within", "72h").
		Assert(t, icmd.Expected{Out: "outside the 3d window"})
	tg.run(t, tok, nil, "status", "--project-id", "42", "--warn-within", "120h").
		Assert(t, icmd.Expected{ExitCode: 10, Err: "within --warn-within 5d"})
	tg.run(t, tok, nil, "rotate", "--project-id", "42", "--if-expiring-within", "120h").
		Assert(t, icmd.Expected{Out: "rotated the token"})
}

func TestRotateWithExpiredToken(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	c := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42"))
	tg.fake.ExpireRunnerToken(c.RunnerID)
	tg.run(t, tok, nil, "rotate", "--project-id", "42", "--if-expiring-within", "1h").Assert(t, icmd.Expected{Out: "rotated"})
	tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", c.RunnerID)
}

func TestPruneDryRunThenReal(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	keep := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42"))
	old := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42", "--variable-key", "OLD"))
	// The variable is deleted by hand; its runner is left without a reference.
	c, err := gitlab.New(gitlab.Config{BaseURL: tg.url, Token: tok, NoRetries: true})
	assert.NilError(t, err)
	assert.NilError(t, c.DeleteVariable(t.Context(), gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: 42, Key: "OLD", Scope: "*"}))

	dry := tg.run(t, tok, nil, "prune", "--project-id", "42", "--dry-run")
	dry.Assert(t, icmd.Expected{Out: "would delete runner"})
	assert.Check(t, is.Len(tg.fake.Runners(), 2))

	tg.run(t, tok, nil, "prune", "--project-id", "42").Assert(t, icmd.Expected{Out: "deleted runner"})
	_, ok := tg.fake.Runner(old.RunnerID)
	assert.Check(t, !ok)
	_, ok = tg.fake.Runner(keep.RunnerID)
	assert.Check(t, ok)
}

func mustVar(t *testing.T, tg *target) struct{ Value string } {
	t.Helper()
	v, ok := tg.fake.Variable("project", 42, "RUNNER_TOKEN", "*")
	assert.Assert(t, ok)
	return struct{ Value string }{v.Value}
}

// TestStatusVerifyTokenDetectsARevokedStoredToken: the token was reset behind the tool's back
// on a GitLab that reports no expiry, so neither the record nor the runner shows it; status
// --verify-token, run where the job receives the variable, asks GitLab about the token itself.
func TestStatusVerifyTokenDetectsARevokedStoredToken(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	created := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42"))
	stored := []string{"RUNNER_TOKEN=" + mustVar(t, tg).Value}
	tg.run(t, tok, stored, "status", "--project-id", "42", "--verify-token").Assert(t, icmd.Success)
	r, _ := tg.fake.Runner(created.RunnerID)
	assert.Check(t, is.Len(r.Managers, 0), "the check's manager entry is removed again")

	tg.fake.RotateRunnerTokenAsRunner(created.RunnerID)
	tg.run(t, tok, stored, "status", "--project-id", "42").Assert(t, icmd.Success) // nothing else can tell
	res := tg.run(t, tok, stored, "status", "--project-id", "42", "--verify-token", "-o", "json")
	res.Assert(t, icmd.Expected{ExitCode: 10})
	var rep statusReport
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &rep))
	assert.Check(t, is.Equal(rep.Health, "stale_token"))
	tg.run(t, tok, nil, "status", "--project-id", "42", "--verify-token").Assert(t, icmd.Expected{ExitCode: 2, Err: "$RUNNER_TOKEN, which is empty here"})
}
