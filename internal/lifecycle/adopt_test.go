package lifecycle_test

import (
	"net/http"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// handMade creates a runner as a person does in the UI (POST /user/runners, no marker) and
// returns its id and token, the one pasted into the hosts' config.toml.
func handMade(t *testing.T, e *env, a gitlab.RunnerAttrs) (int64, string) {
	t.Helper()
	a.RunUntagged, a.AccessLevel, a.MaintenanceNote = true, spec.NotProtected, "made by hand in the UI"
	nt, err := e.svc.API.CreateRunner(e.ctx, a)
	assert.NilError(t, err)
	return nt.RunnerID, nt.Token.Reveal()
}

func (e *env) adopt(t *testing.T, id int64, v spec.Variable, dry bool) (lifecycle.AdoptResult, error) {
	t.Helper()
	sp, runner, err := e.svc.AdoptSpec(e.ctx, id, v)
	if err != nil {
		return lifecycle.AdoptResult{}, err
	}
	return e.svc.Adopt(e.ctx, e.resolve(t, sp), runner, dry)
}

func defaultVar() spec.Variable {
	s := spec.New()
	return s.Variable
}

func TestAdoptEachRunnerTypeWithOneAndThreeManagers(t *testing.T) {
	cases := []struct {
		name     string
		tok      func(gitlabfake.Seed) string
		attrs    func(e *env) gitlab.RunnerAttrs
		variable func(e *env) spec.Variable
		owner    string
		ownerID  func(e *env) int64
		managers []string
	}{
		{"project, one manager", maintainer, func(e *env) gitlab.RunnerAttrs {
			return gitlab.RunnerAttrs{Type: spec.ProjectType, ProjectID: e.seed.DeployProjectID}
		}, func(*env) spec.Variable { return defaultVar() }, "project", func(e *env) int64 { return e.seed.DeployProjectID }, hosts[:1]},
		{"group, three managers", owner, func(e *env) gitlab.RunnerAttrs {
			return gitlab.RunnerAttrs{Type: spec.GroupType, GroupID: e.seed.PlatformGroupID}
		}, func(*env) spec.Variable { return defaultVar() }, "group", func(e *env) int64 { return e.seed.PlatformGroupID }, hosts},
		{"instance, three managers", admin, func(*env) gitlab.RunnerAttrs { return gitlab.RunnerAttrs{Type: spec.InstanceType} },
			func(*env) spec.Variable {
				v := defaultVar()
				v.Owner, v.OwnerRef = spec.OwnerProject, "platform/deploy"
				return v
			}, "project", func(e *env) int64 { return e.seed.DeployProjectID }, hosts},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := setup(t, c.tok)
			id, old := handMade(t, e, c.attrs(e))
			for _, h := range c.managers {
				assert.Equal(t, requestJob(t, e.seed.URL, old, h), http.StatusNoContent)
			}
			dry, err := e.adopt(t, id, c.variable(e), true)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(dry.Action, lifecycle.ActionAdopted))
			assert.Check(t, is.Len(dry.Managers, len(c.managers)))
			assert.Check(t, is.Equal(requestJob(t, e.seed.URL, old, c.managers[0]), http.StatusNoContent), "--dry-run reset the token")
			_, stored := e.fake.Variable(c.owner, c.ownerID(e), "RUNNER_TOKEN", "*")
			assert.Check(t, !stored, "--dry-run stored a variable")

			res, err := e.adopt(t, id, c.variable(e), false)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(res.Action, lifecycle.ActionAdopted))
			assert.Check(t, is.Equal(res.RunnerID, id))
			assert.Check(t, is.Len(res.Managers, len(c.managers)))
			r := e.assertStored(t, c.owner, c.ownerID(e), "RUNNER_TOKEN", "*")
			assert.Check(t, is.Equal(r.ID, id))
			assert.Check(t, strings.HasPrefix(r.MaintenanceNote, "made by hand in the UI\n[runner-bootstrap] target="), r.MaintenanceNote)
			fresh, _ := e.fake.Variable(c.owner, c.ownerID(e), "RUNNER_TOKEN", "*")
			for _, h := range c.managers {
				assert.Check(t, is.Equal(requestJob(t, e.seed.URL, old, h), http.StatusForbidden), "the old token still works")
				assert.Check(t, is.Equal(requestJob(t, e.seed.URL, fresh.Value, h), http.StatusNoContent), "the stored token does not work")
			}

			writes := e.fake.Writes()
			again, err := e.adopt(t, id, c.variable(e), false)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(again.Action, lifecycle.ActionUnchanged))
			assert.Check(t, is.Equal(e.fake.Writes(), writes), "a second adopt wrote")

			// From now on the runner is managed: rotate works through its marker.
			rot, err := e.svc.Rotate(e.ctx, e.resolveAdopted(t, id, c.variable(e)), lifecycle.RotateOptions{})
			assert.NilError(t, err)
			assert.Check(t, is.Equal(rot.Action, lifecycle.ActionRotated))
		})
	}
}

func (e *env) resolveAdopted(t *testing.T, id int64, v spec.Variable) lifecycle.Resolved {
	t.Helper()
	sp, _, err := e.svc.AdoptSpec(e.ctx, id, v)
	assert.NilError(t, err)
	return e.resolve(t, sp)
}

func TestAdoptRefusesARunnerManagedForAnotherVariable(t *testing.T) {
	e := setup(t, maintainer)
	_, res := e.created(t)
	before := e.fake.State()
	v := defaultVar()
	v.Key = "OTHER_TOKEN"
	_, err := e.adopt(t, res.RunnerID, v, false)
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeConflict))
	assert.Check(t, is.ErrorContains(err, "is already managed by runner-bootstrap for another variable"))
	assert.DeepEqual(t, e.fake.State(), before)
}

func TestAdoptRefusesAVariableOfAnotherRunner(t *testing.T) {
	e := setup(t, maintainer)
	e.created(t)
	id, _ := handMade(t, e, gitlab.RunnerAttrs{Type: spec.ProjectType, ProjectID: e.seed.DeployProjectID})
	before := e.fake.State()
	_, err := e.adopt(t, id, defaultVar(), false)
	assert.Check(t, is.ErrorContains(err, "already holds the token of runner"))
	assert.DeepEqual(t, e.fake.State(), before)
}

func TestAdoptAfterAStoreThatFailedResetsAndStoresAgain(t *testing.T) {
	e := setup(t, maintainer)
	id, _ := handMade(t, e, gitlab.RunnerAttrs{Type: spec.ProjectType, ProjectID: e.seed.DeployProjectID})
	// What a run killed after the reset leaves: the pending line, a new token nobody has.
	sp, runner, err := e.svc.AdoptSpec(e.ctx, id, defaultVar())
	assert.NilError(t, err)
	r := e.resolve(t, sp)
	a := runner
	note := a.MaintenanceNote + "\n" + record.AdoptLine(r.Var.Target(), e.svc.Now())
	assert.NilError(t, e.svc.API.UpdateRunner(e.ctx, id, gitlab.RunnerAttrs{Type: spec.ProjectType, Description: a.Description, RunUntagged: true, AccessLevel: a.AccessLevel, MaintenanceNote: note}))
	e.fake.RotateRunnerTokenAsRunner(id)

	// create for the same variable must not take the half-adopted runner for an orphan.
	c := projectSpec()
	c.Runner.Description = a.Description
	c.Runner.TagList = nil
	_, err = e.svc.Ensure(e.ctx, e.resolve(t, c))
	assert.NilError(t, err)
	_, ok := e.fake.Runner(id)
	assert.Assert(t, ok, "create deleted the runner being adopted")
	_, err = e.svc.Delete(e.ctx, e.resolve(t, c))
	assert.NilError(t, err)
	_, ok = e.fake.Runner(id)
	assert.Assert(t, ok, "delete removed the runner being adopted")

	res, err := e.adopt(t, id, defaultVar(), false)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(res.Action, lifecycle.ActionAdopted))
	got := e.assertStored(t, "project", e.seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Check(t, is.Equal(got.ID, id))
	assert.Check(t, !strings.Contains(got.MaintenanceNote, record.AdoptMarker), got.MaintenanceNote)
}
