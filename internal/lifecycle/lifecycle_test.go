package lifecycle_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

type env struct {
	fake *gitlabfake.Server
	seed gitlabfake.Seed
	svc  *lifecycle.Service
	ctx  context.Context
}

func setup(t *testing.T, tok func(gitlabfake.Seed) string) *env {
	t.Helper()
	fake, seed := gitlabfake.NewTest(t)
	return &env{fake: fake, seed: seed, svc: service(t, seed.URL, tok(seed)), ctx: t.Context()}
}

func service(t *testing.T, url, tok string) *lifecycle.Service {
	t.Helper()
	c, err := gitlab.New(gitlab.Config{BaseURL: url, Token: tok, NoRetries: true, RequestTimeout: 5 * time.Second})
	assert.NilError(t, err)
	log := logrus.New()
	log.SetOutput(io.Discard)
	svc := lifecycle.New(c, log)
	svc.Pause = func(time.Duration) {}
	return svc
}

func owner(s gitlabfake.Seed) string      { return s.OwnerToken }
func maintainer(s gitlabfake.Seed) string { return s.MaintainerToken }
func admin(s gitlabfake.Seed) string      { return s.AdminToken }

func projectSpec() spec.Spec {
	s := spec.New()
	s.Runner.ProjectRef = "platform/deploy"
	s.Runner.Description = "deploy"
	s.Runner.TagList = []string{"docker", "linux"}
	return s
}

func (e *env) resolve(t *testing.T, s spec.Spec) lifecycle.Resolved {
	t.Helper()
	r, err := e.svc.Resolve(e.ctx, s)
	assert.NilError(t, err)
	return r
}

// assertStored checks the invariant: the variable holds the token of the runner it records.
func (e *env) assertStored(t *testing.T, owner string, ownerID int64, key, scope string) gitlabfake.Runner {
	t.Helper()
	v, ok := e.fake.Variable(owner, ownerID, key, scope)
	assert.Assert(t, ok, "variable %s missing", key)
	rec, ok := record.ParseVariable(v.Description)
	assert.Assert(t, ok, "variable description %q holds no record", v.Description)
	r, ok := e.fake.Runner(rec.RunnerID)
	assert.Assert(t, ok, "runner %d recorded in the variable does not exist", rec.RunnerID)
	assert.Assert(t, v.Value == r.Token, "the variable does not hold runner %d's current token", r.ID)
	assert.Check(t, v.Masked)
	return r
}

func (e *env) runnerCount() int { return len(e.fake.Runners()) }

func TestEnsureCreateThenRerunWritesNothing(t *testing.T) {
	e := setup(t, maintainer)
	r := e.resolve(t, projectSpec())

	res, err := e.svc.Ensure(e.ctx, r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Action, lifecycle.ActionCreated))
	assert.Check(t, is.Equal(res.VariableKey, "RUNNER_TOKEN"))
	runner := e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, is.Equal(runner.ID, res.RunnerID))
	assert.Check(t, is.DeepEqual(runner.TagList, []string{"docker", "linux"}))
	assert.Check(t, is.Contains(runner.MaintenanceNote, "[runner-bootstrap] target=project:42/RUNNER_TOKEN@*"))
	v, _ := e.fake.Variable("project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, v.Hidden && v.Protected && v.Masked && !v.Raw)

	writes := e.fake.Writes()
	res, err = e.svc.Ensure(e.ctx, r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Action, lifecycle.ActionUnchanged))
	assert.Check(t, is.Equal(e.fake.Writes(), writes), "a re-run must not write")
	assert.Check(t, is.Equal(e.runnerCount(), 1))
}

func TestEnsureUpdatesInPlaceKeepingToken(t *testing.T) {
	e := setup(t, maintainer)
	res, err := e.svc.Ensure(e.ctx, e.resolve(t, projectSpec()))
	assert.NilError(t, err)
	before, _ := e.fake.Runner(res.RunnerID)

	s := projectSpec()
	s.Runner.TagList = []string{"docker"}
	s.Runner.Locked = true
	s.Runner.MaximumTimeout = 3600
	s.Runner.MaintenanceNote = "owned by team platform"
	res2, err := e.svc.Ensure(e.ctx, e.resolve(t, s))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res2.Action, lifecycle.ActionUpdated))
	assert.Check(t, is.Equal(res2.RunnerID, res.RunnerID))
	assert.Check(t, is.DeepEqual(res2.Changes, []string{"tag_list", "locked", "maximum_timeout", "maintenance_note"}))
	after := e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, is.Equal(after.Token, before.Token), "an update must not touch the token")
	assert.Check(t, after.Locked)
	assert.Check(t, is.Contains(after.MaintenanceNote, "owned by team platform\n[runner-bootstrap]"))

	res3, err := e.svc.Ensure(e.ctx, e.resolve(t, s))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res3.Action, lifecycle.ActionUnchanged))
}

func TestEnsureReplacesDeletedRunner(t *testing.T) {
	e := setup(t, maintainer)
	r := e.resolve(t, projectSpec())
	res, err := e.svc.Ensure(e.ctx, r)
	assert.NilError(t, err)
	e.fake.DeleteRunnerDirect(res.RunnerID)

	res2, err := e.svc.Ensure(e.ctx, r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res2.Action, lifecycle.ActionReplaced))
	assert.Check(t, is.Equal(res2.PreviousRunnerID, res.RunnerID))
	assert.Check(t, res2.RunnerID != res.RunnerID)
	e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, is.Equal(e.runnerCount(), 1))
}

func TestEnsureGroupRunnerAndInstanceRunner(t *testing.T) {
	e := setup(t, owner)
	s := spec.New()
	s.Runner.Type, s.Runner.GroupRef = spec.GroupType, "platform"
	s.Variable.Key = "GROUP_RUNNER_TOKEN"
	s.Variable.Owner, s.Variable.OwnerRef = spec.OwnerProject, "platform/deploy"
	s.Variable.EnvironmentScope = "production"
	res, err := e.svc.Ensure(e.ctx, e.resolve(t, s))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.RunnerType, "group_type"))
	runner := e.assertStored(t, "project", e.seed.DeployProjectID, "GROUP_RUNNER_TOKEN", "production")
	assert.Check(t, is.Equal(runner.GroupID, e.seed.PlatformGroupID))

	a := setup(t, admin)
	is := spec.New()
	is.Runner.Type = spec.InstanceType
	is.Variable.Owner = spec.OwnerInstance
	res, err = a.svc.Ensure(a.ctx, a.resolve(t, is))
	assert.NilError(t, err)
	assert.Assert(t, len(res.Notes) == 1)
	assert.Check(t, cmpContains(res.Notes[0], "cannot be hidden"))
	v, ok := a.fake.Variable("instance", 0, "RUNNER_TOKEN", "*")
	assert.Assert(t, ok)
	assert.Check(t, v.Masked && !v.Hidden)
	a.assertStored(t, "instance", 0, "RUNNER_TOKEN", "*")
}

func cmpContains(s, sub string) bool { return len(s) >= len(sub) && contains(s, sub) }

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestEnsureDeletesRunnerWhenTokenCannotBeStored(t *testing.T) {
	e := setup(t, maintainer)
	e.fake.AddFault(gitlabfake.Fault{Method: "POST", Path: "/projects/*/variables", Status: 500})
	_, err := e.svc.Ensure(e.ctx, e.resolve(t, projectSpec()))
	assert.ErrorContains(t, err, "was deleted again so that no runner is left whose token is stored nowhere")
	assert.Check(t, is.Equal(e.runnerCount(), 0))
	_, ok := e.fake.Variable("project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, !ok)
}

func TestEnsureCleansOrphanOfKilledRun(t *testing.T) {
	e := setup(t, maintainer)
	r := e.resolve(t, projectSpec())
	// A killed run: the runner was created with its marker, the token never stored.
	e.fake.AddFault(gitlabfake.Fault{Method: "POST", Path: "/projects/*/variables", Drop: true, Times: 1})
	e.fake.AddFault(gitlabfake.Fault{Method: "DELETE", Path: "/runners/*", Drop: true, Times: 1})
	_, err := e.svc.Ensure(e.ctx, r)
	assert.Assert(t, err != nil)
	assert.Check(t, is.Equal(e.runnerCount(), 1), "the failed run leaves its marked runner behind")

	res, err := e.svc.Ensure(e.ctx, r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Action, lifecycle.ActionCreated))
	assert.Check(t, is.Len(res.OrphansDeleted, 1))
	assert.Check(t, is.Equal(e.runnerCount(), 1))
	e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
}

func TestEnsureNeverTouchesForeignVariableOrRunners(t *testing.T) {
	e := setup(t, maintainer)
	// Someone's own variable with the same key.
	c, _ := gitlab.New(gitlab.Config{BaseURL: e.seed.URL, Token: e.seed.MaintainerToken, NoRetries: true})
	val := tokenSecret("some-other-value-123")
	assert.NilError(t, c.CreateVariable(e.ctx, gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: e.seed.DeployProjectID, Key: "RUNNER_TOKEN", Scope: "*"}, gitlab.VariableWrite{Value: &val}))
	writes := e.fake.Writes()
	_, err := e.svc.Ensure(e.ctx, e.resolve(t, projectSpec()))
	assert.ErrorContains(t, err, "was not written by runner-bootstrap")
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeConflict))
	assert.Check(t, is.Equal(e.fake.Writes(), writes))
}

func TestConcurrentEnsureEndsWithOneRunner(t *testing.T) {
	e := setup(t, maintainer)
	e.fake.SetLatency(15 * time.Millisecond)
	r := e.resolve(t, projectSpec())
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			svc := service(t, e.seed.URL, e.seed.MaintainerToken)
			_, errs[i] = svc.Ensure(e.ctx, r)
		})
	}
	wg.Wait()
	for _, err := range errs {
		assert.Check(t, err)
	}
	assert.Check(t, is.Equal(e.runnerCount(), 1))
	e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
}

func TestOwnerChangeReplacesAndDeletesOldRunner(t *testing.T) {
	e := setup(t, owner)
	first, err := e.svc.Ensure(e.ctx, e.resolve(t, projectSpec()))
	assert.NilError(t, err)
	s := projectSpec()
	s.Runner.Type, s.Runner.ProjectRef, s.Runner.GroupRef = spec.GroupType, "", "platform"
	s.Variable.Owner, s.Variable.OwnerRef = spec.OwnerProject, "platform/deploy"
	res, err := e.svc.Ensure(e.ctx, e.resolve(t, s))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Action, lifecycle.ActionReplaced))
	assert.Check(t, is.Equal(res.PreviousRunnerID, first.RunnerID))
	_, ok := e.fake.Runner(first.RunnerID)
	assert.Check(t, !ok, "the old project runner must not keep a working token")
	assert.Check(t, is.Equal(e.runnerCount(), 1))
	e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
}

func TestEnsureAndRotateRemaskAnUnmaskedVariable(t *testing.T) {
	e := setup(t, maintainer)
	s := projectSpec()
	s.Variable.Hidden = false
	r := e.resolve(t, s)
	_, err := e.svc.Ensure(e.ctx, r)
	assert.NilError(t, err)
	c, err := gitlab.New(gitlab.Config{BaseURL: e.seed.URL, Token: e.seed.MaintainerToken, NoRetries: true})
	assert.NilError(t, err)
	unmask := func() {
		assert.NilError(t, c.UpdateVariable(e.ctx, r.Var, gitlab.VariableWrite{Masked: new(false)}))
	}
	unmask()
	res, err := e.svc.Ensure(e.ctx, r)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(res.Changes, "variable masked"))
	v, _ := e.fake.Variable("project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, v.Masked)

	unmask()
	_, err = e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{})
	assert.NilError(t, err)
	v, _ = e.fake.Variable("project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, v.Masked, "a new token never goes into an unmasked variable")
}

// TestScopedGroupVariableOnFree: GitLab Free drops a group variable's environment scope; the
// tool notices, removes what it stored, deletes the runner and says what to do, instead of
// leaving a variable no later run would find.
func TestScopedGroupVariableOnFree(t *testing.T) {
	e := setup(t, owner)
	e.fake.SetGroupScopesUnlicensed(true)
	s := spec.New()
	s.Runner.Type, s.Runner.GroupRef = spec.GroupType, "platform"
	s.Variable.EnvironmentScope = "production"
	_, err := e.svc.Ensure(e.ctx, e.resolve(t, s))
	assert.Check(t, is.ErrorContains(err, "scoped group variables need GitLab Premium"))
	assert.Check(t, is.Equal(e.runnerCount(), 0))
	assert.Check(t, is.Len(e.fake.Variables(), 0))

	s.Variable.EnvironmentScope = "*"
	_, err = e.svc.Ensure(e.ctx, e.resolve(t, s))
	assert.NilError(t, err)
	e.assertStored(t, "group", e.seed.PlatformGroupID, "RUNNER_TOKEN", "*")
}

// TestMaximumTimeoutCanBeRemoved: 0 means no limit, so dropping --maximum-timeout clears it.
func TestMaximumTimeoutCanBeRemoved(t *testing.T) {
	e := setup(t, maintainer)
	s := projectSpec()
	s.Runner.MaximumTimeout = 3600
	res, err := e.svc.Ensure(e.ctx, e.resolve(t, s))
	assert.NilError(t, err)
	s.Runner.MaximumTimeout = 0
	upd, err := e.svc.Ensure(e.ctx, e.resolve(t, s))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(upd.Action, lifecycle.ActionUpdated))
	assert.Check(t, is.DeepEqual(upd.Changes, []string{"maximum_timeout"}))
	assert.Check(t, is.Equal(mustRunner(t, e, res.RunnerID).MaximumTimeout, int64(0)))
	again, err := e.svc.Ensure(e.ctx, e.resolve(t, s))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(again.Action, lifecycle.ActionUnchanged))
}
