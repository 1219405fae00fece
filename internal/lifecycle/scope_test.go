package lifecycle_test

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

func (e *env) client(t *testing.T, tok string) *gitlab.Client {
	t.Helper()
	c, err := gitlab.New(gitlab.Config{BaseURL: e.seed.URL, Token: tok, NoRetries: true})
	assert.NilError(t, err)
	return c
}

// TestRotateScopeCountsRotatedAndSkipped: only tokens within the window are rotated; the
// others are counted as skipped, and nothing fails.
func TestRotateScopeCountsRotatedAndSkipped(t *testing.T) {
	e := setup(t, maintainer)
	for key, life := range map[string]time.Duration{"LATER": 100 * time.Hour, "SOON": 10 * time.Hour} {
		e.fake.SetRunnerTokenExpiration(life)
		s := projectSpec()
		s.Variable.Key = key
		_, err := e.svc.Ensure(e.ctx, e.resolve(t, s))
		assert.NilError(t, err)
	}
	c := e.client(t, e.seed.MaintainerToken)
	owners, err := lifecycle.Owners(e.ctx, c, c, lifecycle.Scope{Kind: spec.OwnerProject, Ref: "platform/deploy"})
	assert.NilError(t, err)
	assert.DeepEqual(t, owners, []lifecycle.Owner{{Kind: spec.OwnerProject, ID: e.seed.DeployProjectID, Path: "platform/deploy"}})

	started := 0
	var done []string
	b, err := e.svc.RotateScope(e.ctx, owners, false, lifecycle.RotateOptions{IfExpiringWithin: 72 * time.Hour}, 2,
		func(n int) { started = n }, func(it lifecycle.BulkItem) { done = append(done, it.Action) })
	assert.NilError(t, err)
	assert.Check(t, is.Equal(started, 2))
	assert.Check(t, is.Len(done, 2))
	assert.Check(t, is.Equal(b.Rotated, 1))
	assert.Check(t, is.Equal(b.Skipped, 1))
	assert.Check(t, is.Equal(b.Failed, 0))
	actions := map[string]string{}
	for _, it := range b.Items {
		actions[it.VariableKey] = it.Action
	}
	assert.Check(t, is.DeepEqual(actions, map[string]string{"LATER": lifecycle.ActionSkipped, "SOON": lifecycle.ActionRotated}))
}

// TestRotateScopeWithNothingManagedIsNotFound: a scope without managed variables is an error
// (an empty table with exit 0 would hide a schedule pointed at the wrong place).
func TestRotateScopeWithNothingManagedIsNotFound(t *testing.T) {
	e := setup(t, maintainer)
	c := e.client(t, e.seed.MaintainerToken)
	owners, err := lifecycle.Owners(e.ctx, c, c, lifecycle.Scope{Kind: spec.OwnerProject, Ref: "platform/deploy"})
	assert.NilError(t, err)
	_, err = e.svc.RotateScope(e.ctx, owners, false, lifecycle.RotateOptions{}, 1, nil, nil)
	assert.Check(t, is.ErrorContains(err, "no variable managed by runner-bootstrap in project platform/deploy"))
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeNotFound))
}

func TestBulkReportCountsEveryOtherActionAsFailed(t *testing.T) {
	var b lifecycle.BulkReport
	b.Count([]lifecycle.BulkItem{
		{Result: lifecycle.Result{Action: lifecycle.ActionRotated}},
		{Result: lifecycle.Result{Action: lifecycle.ActionSkipped}},
		{Result: lifecycle.Result{Action: "failed"}},
		{Result: lifecycle.Result{Action: ""}},
	})
	assert.Check(t, is.Equal(b.Rotated, 1))
	assert.Check(t, is.Equal(b.Skipped, 1))
	assert.Check(t, is.Equal(b.Failed, 2))
	assert.Check(t, is.Len(b.Items, 4))
}

func TestScopeName(t *testing.T) {
	g := lifecycle.Owner{Kind: spec.OwnerGroup, ID: 1, Path: "platform"}
	p := lifecycle.Owner{Kind: spec.OwnerProject, ID: 2, Path: "platform/deploy"}
	assert.Check(t, is.Equal(lifecycle.ScopeName([]lifecycle.Owner{g}, false), "group platform"))
	assert.Check(t, is.Equal(lifecycle.ScopeName([]lifecycle.Owner{g}, true), "group platform (it has no subgroups or projects)"))
	assert.Check(t, is.Equal(lifecycle.ScopeName([]lifecycle.Owner{g, p}, true), "group platform and its 1 subgroup or project"))
	assert.Check(t, is.Equal(lifecycle.ScopeName([]lifecycle.Owner{g, p, p}, true), "group platform and its 2 subgroups and projects"))
	assert.Check(t, is.Equal(lifecycle.ScopeName([]lifecycle.Owner{{Kind: spec.OwnerInstance}}, false), "the instance"))
}
