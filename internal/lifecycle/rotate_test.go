package lifecycle_test

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

func (e *env) created(t *testing.T) (lifecycle.Resolved, lifecycle.Result) {
	t.Helper()
	r := e.resolve(t, projectSpec())
	res, err := e.svc.Ensure(e.ctx, r)
	assert.NilError(t, err)
	return r, res
}

func (e *env) deployVar(t *testing.T) gitlabfake.Variable {
	v, ok := e.fake.Variable("project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Assert(t, ok)
	return v
}

func TestRotateStoresNewTokenAndOldOneStopsWorking(t *testing.T) {
	e := setup(t, maintainer)
	r, res := e.created(t)
	old := e.deployVar(t).Value

	rot, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(rot.Action, lifecycle.ActionRotated))
	assert.Check(t, is.Equal(rot.RunnerID, res.RunnerID))
	runner := e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, runner.Token != old)
	rec, _ := record.ParseVariable(e.deployVar(t).Description)
	assert.Check(t, !rec.RotationPending)
}

func TestRotateAfterRunnerRotatedItself(t *testing.T) {
	e := setup(t, maintainer)
	r, res := e.created(t)
	e.fake.RotateRunnerTokenAsRunner(res.RunnerID)
	assert.Check(t, e.deployVar(t).Value != mustRunner(t, e, res.RunnerID).Token, "precondition: the stored token is stale")

	_, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{})
	assert.NilError(t, err)
	e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
}

func mustRunner(t *testing.T, e *env, id int64) gitlabfake.Runner {
	r, ok := e.fake.Runner(id)
	assert.Assert(t, ok)
	return r
}

func withClock(e *env, start time.Time) *time.Time {
	now := start
	e.fake.SetClock(func() time.Time { return now })
	e.svc.Now = func() time.Time { return now }
	return &now
}

func TestRotateIfExpiringWithin(t *testing.T) {
	e := setup(t, maintainer)
	now := withClock(e, time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	e.fake.SetRunnerTokenExpiration(100 * time.Hour)
	r, _ := e.created(t)

	res, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{IfExpiringWithin: 72 * time.Hour})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Action, lifecycle.ActionSkipped))
	assert.Check(t, is.Contains(res.Reason, "outside the 3d window"))

	*now = now.Add(30 * time.Hour)
	res, err = e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{IfExpiringWithin: 72 * time.Hour})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Action, lifecycle.ActionRotated))
	assert.Check(t, is.Contains(res.Reason, "within 3d"))
	assert.Check(t, is.Equal(res.TokenExpiresAt.UTC(), now.Add(100*time.Hour).UTC()))
	e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
}

func TestRotateWithExpiredToken(t *testing.T) {
	e := setup(t, maintainer)
	r, res := e.created(t)
	e.fake.ExpireRunnerToken(res.RunnerID)
	rot, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{IfExpiringWithin: time.Hour})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(rot.Action, lifecycle.ActionRotated))
	e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
}

func TestRotateWithRunnerToken(t *testing.T) {
	e := setup(t, maintainer)
	r, _ := e.created(t)
	cur := token.Secret(e.deployVar(t).Value)
	_, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{RunnerToken: &cur})
	assert.NilError(t, err)
	runner := e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, runner.Token != cur.Reveal())
}

func TestRotateStoreFailureIsRepairedByNextRun(t *testing.T) {
	e := setup(t, maintainer)
	r, _ := e.created(t)
	// The pending mark goes through; the store of the new token fails.
	e.fake.AddFault(gitlabfake.Fault{Method: "PUT", Path: "/projects/*/variables/*", Status: 503, Skip: 1, Times: 1})
	_, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{})
	assert.ErrorContains(t, err, "run runner-bootstrap rotate again")
	rec, _ := record.ParseVariable(e.deployVar(t).Description)
	assert.Check(t, rec.RotationPending)

	rep, err := e.svc.Status(e.ctx, r, 0)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(rep.Health, lifecycle.HealthStale))
	assert.Check(t, is.Equal(rep.ExitCode, fail.CodeExpiring))

	// A create re-run repairs it (so does rotate).
	res, err := e.svc.Ensure(e.ctx, r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Action, lifecycle.ActionUpdated))
	e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
}

func TestRotateChecksWritabilityBeforeReset(t *testing.T) {
	e := setup(t, maintainer)
	r, res := e.created(t)
	before := mustRunner(t, e, res.RunnerID).Token
	e.fake.AddFault(gitlabfake.Fault{Method: "PUT", Path: "/projects/*/variables/*", Status: 403, Body: `{"message":"403 Forbidden"}`, Times: 1})
	_, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{})
	assert.ErrorContains(t, err, "nothing was rotated")
	assert.Check(t, is.Equal(mustRunner(t, e, res.RunnerID).Token, before))
}

func TestStatusExitCodes(t *testing.T) {
	e := setup(t, maintainer)
	now := withClock(e, time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	r := e.resolve(t, projectSpec())

	rep, err := e.svc.Status(e.ctx, r, 72*time.Hour)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(rep.ExitCode, fail.CodeVariableMissing))

	e.fake.SetRunnerTokenExpiration(100 * time.Hour)
	res, err := e.svc.Ensure(e.ctx, r)
	assert.NilError(t, err)
	e.fake.ContactRunner(res.RunnerID, "s_0123456789ab")
	rep, err = e.svc.Status(e.ctx, r, 72*time.Hour)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(rep.Health, lifecycle.HealthOK), rep.Message)
	assert.Check(t, is.Equal(rep.ExitCode, 0))
	assert.Assert(t, is.Len(rep.Managers, 1))
	assert.Check(t, is.Equal(rep.Managers[0].SystemID, "s_0123456789ab"))

	*now = now.Add(50 * time.Hour)
	rep, _ = e.svc.Status(e.ctx, r, 72*time.Hour)
	assert.Check(t, is.Equal(rep.Health, lifecycle.HealthExpiring))
	assert.Check(t, is.Equal(rep.ExitCode, fail.CodeExpiring))

	e.fake.DeleteRunnerDirect(res.RunnerID)
	rep, _ = e.svc.Status(e.ctx, r, 72*time.Hour)
	assert.Check(t, is.Equal(rep.ExitCode, fail.CodeRunnerGone))
}

func TestDeleteTwice(t *testing.T) {
	e := setup(t, maintainer)
	r, res := e.created(t)
	r.AnyDescription = true
	del, err := e.svc.Delete(e.ctx, r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(del.Action, lifecycle.ActionDeleted))
	assert.Check(t, is.Equal(del.RunnerID, res.RunnerID))
	assert.Check(t, is.Equal(e.runnerCount(), 0))
	_, ok := e.fake.Variable("project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, !ok)

	again, err := e.svc.Delete(e.ctx, r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(again.Action, lifecycle.ActionAbsent))
}

func TestPruneOnlyTouchesMarkedUnreferencedRunners(t *testing.T) {
	e := setup(t, maintainer)
	r, kept := e.created(t)
	_ = r
	// An unreferenced marked runner: created for a variable that was deleted by hand.
	other := projectSpec()
	other.Variable.Key = "OLD_TOKEN"
	res2, err := e.svc.Ensure(e.ctx, e.resolve(t, other))
	assert.NilError(t, err)
	c, err := gitlab.New(gitlab.Config{BaseURL: e.seed.URL, Token: e.seed.MaintainerToken, NoRetries: true})
	assert.NilError(t, err)
	assert.NilError(t, c.DeleteVariable(e.ctx, gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: e.seed.DeployProjectID, Key: "OLD_TOKEN", Scope: "*"}))
	// A runner someone created by hand, with the same description: never touched.
	nt, err := c.CreateRunner(e.ctx, gitlab.RunnerAttrs{Type: spec.ProjectType, ProjectID: e.seed.DeployProjectID, Description: "deploy", RunUntagged: true})
	assert.NilError(t, err)
	foreign := nt.RunnerID

	o := lifecycle.PruneOptions{Owner: spec.OwnerProject, OwnerID: e.seed.DeployProjectID, Types: []spec.RunnerType{spec.ProjectType}, DryRun: true}
	items, err := e.svc.Prune(e.ctx, o)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(items, 1))
	assert.Check(t, is.Equal(items[0].RunnerID, res2.RunnerID))
	assert.Check(t, !items[0].Deleted)
	assert.Check(t, is.Equal(e.runnerCount(), 3), "dry run changes nothing")

	o.DryRun = false
	items, err = e.svc.Prune(e.ctx, o)
	assert.NilError(t, err)
	assert.Check(t, is.Len(items, 1))
	_, ok := e.fake.Runner(res2.RunnerID)
	assert.Check(t, !ok)
	_, ok = e.fake.Runner(kept.RunnerID)
	assert.Check(t, ok)
	_, ok = e.fake.Runner(foreign)
	assert.Check(t, ok)
}

// TestPruneOlderThanNeverDeletesAReferencedRunner: --older-than is a grace period for
// unreferenced runners; a runner whose token a live variable holds is kept however idle it is
// (its managers may simply be switched off), and an unreferenced one is pruned only once idle
// beyond the window.
func TestPruneOlderThanNeverDeletesAReferencedRunner(t *testing.T) {
	e := setup(t, maintainer)
	now := withClock(e, time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	_, referenced := e.created(t)
	gone := projectSpec()
	gone.Variable.Key = "GONE"
	old, err := e.svc.Ensure(e.ctx, e.resolve(t, gone))
	assert.NilError(t, err)
	*now = now.Add(40 * 24 * time.Hour)
	recent := projectSpec()
	recent.Variable.Key = "RECENT"
	young, err := e.svc.Ensure(e.ctx, e.resolve(t, recent))
	assert.NilError(t, err)
	c, err := gitlab.New(gitlab.Config{BaseURL: e.seed.URL, Token: e.seed.MaintainerToken, NoRetries: true})
	assert.NilError(t, err)
	for _, k := range []string{"GONE", "RECENT"} {
		assert.NilError(t, c.DeleteVariable(e.ctx, gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: e.seed.DeployProjectID, Key: k, Scope: "*"}))
	}

	o := lifecycle.PruneOptions{Owner: spec.OwnerProject, OwnerID: e.seed.DeployProjectID, Types: []spec.RunnerType{spec.ProjectType}, OlderThan: 30 * 24 * time.Hour}
	items, err := e.svc.Prune(e.ctx, o)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(items, 1))
	assert.Check(t, is.Equal(items[0].RunnerID, old.RunnerID))
	assert.Check(t, is.Contains(items[0].Reason, "never contacted since it was created"))
	_, ok := e.fake.Runner(referenced.RunnerID)
	assert.Check(t, ok, "a runner a live variable references is never pruned by age")
	_, ok = e.fake.Runner(young.RunnerID)
	assert.Check(t, ok, "an unreferenced runner inside the grace period is kept")
}

func TestRotateWithRunnerTokenOfAnotherRunnerChangesNothing(t *testing.T) {
	e := setup(t, maintainer)
	r, res := e.created(t)
	other := projectSpec()
	other.Variable.Key = "OTHER_TOKEN"
	o, err := e.svc.Ensure(e.ctx, e.resolve(t, other))
	assert.NilError(t, err)
	wrong := token.Secret(mustRunner(t, e, o.RunnerID).Token)
	before := e.fake.State()

	_, err = e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{RunnerToken: &wrong})
	assert.Check(t, is.ErrorContains(err, "belongs to runner "))
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeConflict))
	assert.Check(t, is.Equal(mustRunner(t, e, o.RunnerID).Token, wrong.Reveal()), "the other runner was not reset")
	assert.Check(t, is.Equal(mustRunner(t, e, res.RunnerID).Token, runnerToken(before, res.RunnerID)))
	assert.Check(t, is.Len(mustRunner(t, e, o.RunnerID).Managers, 0), "the verification manager was removed again")
}

func runnerToken(st gitlabfake.State, id int64) string {
	for _, r := range st.Runners {
		if r.ID == id {
			return r.Token
		}
	}
	return ""
}

// TestDeleteByVariableOnlyFindsTheRunnerItself: delete named only by the variable (no runner
// owner, so the flags default to an instance runner) still deletes the recorded project runner
// and the variable, without needing the admin-only instance runner list.
func TestDeleteByVariableOnly(t *testing.T) {
	e := setup(t, owner)
	_, res := e.created(t)
	s := spec.New()
	s.Runner.Type = spec.InstanceType
	s.Variable.Owner, s.Variable.OwnerRef = spec.OwnerProject, "42"
	r := e.resolve(t, s)
	r.AnyDescription = true
	del, err := e.svc.Delete(e.ctx, r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(del.Action, lifecycle.ActionDeleted))
	assert.Check(t, is.Equal(del.RunnerID, res.RunnerID))
	assert.Check(t, is.Equal(e.runnerCount(), 0))
	assert.Check(t, is.Len(e.fake.Variables(), 0))
}

// TestDeleteFindsMarkedRunnersOfAnyDescription: Delete looks at every runner of the owner for
// markers naming the variable, whatever description the spec gives (the caller sets nothing).
func TestDeleteFindsMarkedRunnersOfAnyDescription(t *testing.T) {
	e := setup(t, maintainer)
	r, _ := e.created(t)
	// A killed run left a runner marked for the variable under another description.
	other := r
	other.Attrs.Description = "renamed since"
	other.Attrs.MaintenanceNote = record.ComposeNote("", record.Runner{Target: r.Var.Target(), CreatedAt: time.Now()})
	c := e.client(t, e.seed.MaintainerToken)
	_, err := c.CreateRunner(e.ctx, other.Attrs)
	assert.NilError(t, err)
	assert.Equal(t, e.runnerCount(), 2)

	del, err := e.svc.Delete(e.ctx, r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(del.Action, lifecycle.ActionDeleted))
	assert.Check(t, is.Len(del.OrphansDeleted, 1))
	assert.Check(t, is.Equal(e.runnerCount(), 0))
}
