package fleet_test

import (
	"strconv"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fleet"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// TestPruneSafety: --prune deletes only runners that carry the tool's marker, that GitLab
// says are owned by one of the manifest's runner owners, and that no entry keeps.
func TestPruneSafety(t *testing.T) {
	e := setup(t)
	m := parse(t, `
runners:
  - project_id: 42
    description: keep
    variable: {key: KEEP}
  - runner_type: group_type
    group_id: platform/runners
    description: group keep
    variable: {key: GKEEP}
`)
	_, sum := e.apply(t, e.fleet(1), m, true)
	assert.Check(t, is.Equal(sum.Results["created"], 2))
	keep, gkeep := int64(1000), int64(1001)

	project := func(id int64, desc string) gitlab.RunnerAttrs {
		return gitlab.RunnerAttrs{Type: spec.ProjectType, ProjectID: id, Description: desc}
	}
	group := func(id int64, desc string) gitlab.RunnerAttrs {
		return gitlab.RunnerAttrs{Type: spec.GroupType, GroupID: id, Description: desc}
	}
	mustStay := map[string]int64{
		// No marker: registered by hand, even with an entry's description.
		"unmarked, same description as an entry": e.markedRunner(t, project(42, "keep"), ""),
		"unmarked group runner":                  e.markedRunner(t, group(11, "manual"), ""),
		// A marker, but another owner: the manifest says nothing about project 43.
		"marked, in a project the manifest does not own runners in": e.markedRunner(t, project(43, "x"), "project:43/X@*"),
		// Listed under group 11 (lists include ancestors' runners) but owned by group 10.
		"marked, owned by the ancestor group": e.markedRunner(t, group(10, "y"), "group:10/Y@*"),
	}
	// Marked, owned by a manifest owner, wanted by nobody.
	gone := e.markedRunner(t, project(42, "old"), "project:42/OLD@*")
	goneGroup := e.markedRunner(t, group(11, "old group"), "group:11/GOLD@*")
	// Marked for a variable in an owner the manifest does not list; that variable records it,
	// so it goes too. (As left by runner-bootstrap create --project-id 42 --variable-project 43.)
	cross := e.markedRunner(t, project(42, "cross"), "project:43/CROSS@*")
	crossVar := gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: 43, Key: "CROSS", Scope: "*"}
	desc := "managed by runner-bootstrap; runner_id=" + strconv.FormatInt(cross, 10) + "; token_expires_at=never; token_set_at=2026-11-01T12:00:00Z"
	assert.NilError(t, e.client.CreateVariable(e.ctx, crossVar, gitlab.VariableWrite{Value: new(tokenFor(e, cross)), Description: &desc}))
	// A variable of another owner that records some other runner is not touched.
	otherVar := gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: 43, Key: "X", Scope: "*"}
	odesc := "managed by runner-bootstrap; runner_id=" + strconv.FormatInt(mustStay["marked, in a project the manifest does not own runners in"], 10) + "; token_expires_at=never; token_set_at=2026-11-01T12:00:00Z"
	assert.NilError(t, e.client.CreateVariable(e.ctx, otherVar, gitlab.VariableWrite{Value: new(tokenFor(e, mustStay["marked, in a project the manifest does not own runners in"])), Description: &odesc}))

	p, sum := e.apply(t, e.fleet(8), m, true)
	assert.Check(t, is.Equal(sum.Failed, 0))
	var deleted []int64
	for _, it := range p.Items {
		if it.Action == fleet.Delete {
			deleted = append(deleted, it.RunnerID)
			assert.Check(t, is.Equal(it.Result, "deleted"))
		}
	}
	assert.Check(t, is.DeepEqual(deleted, []int64{gone, goneGroup, cross}))
	for why, id := range mustStay {
		_, ok := e.fake.Runner(id)
		assert.Check(t, ok, "runner %d (%s) was deleted", id, why)
	}
	for _, id := range []int64{keep, gkeep} {
		_, ok := e.fake.Runner(id)
		assert.Check(t, ok, "kept runner %d was deleted", id)
	}
	for _, id := range deleted {
		_, ok := e.fake.Runner(id)
		assert.Check(t, !ok, "runner %d is still there", id)
	}
	_, ok := e.fake.Variable("project", 43, "CROSS", "*")
	assert.Check(t, !ok, "the variable that recorded the pruned runner is gone")
	_, ok = e.fake.Variable("project", 43, "X", "*")
	assert.Check(t, ok, "a variable of a runner outside the manifest's owners stays")

	// Without --prune nothing is deleted, and plans never contain deletes.
	e.markedRunner(t, project(42, "later"), "project:42/LATER@*")
	p, _ = e.apply(t, e.fleet(8), m, false)
	for _, it := range p.Items {
		assert.Check(t, it.Action != fleet.Delete)
	}
}

// tokenFor is the runner's current token, for variables set up by hand.
func tokenFor(e *env, id int64) token.Secret {
	r, _ := e.fake.Runner(id)
	return token.Secret(r.Token)
}

// TestPruneKeepsTheRunnerBeingReplaced: an entry moved to another owner is replaced; its old
// runner is deleted by the entry once the new token is stored, never by prune beforehand, so a
// failed replacement leaves the old runner and its working token in place.
func TestPruneKeepsTheRunnerBeingReplaced(t *testing.T) {
	e := setup(t)
	_, sum := e.apply(t, e.fleet(1), parse(t, `
runners:
  - project_id: 42
    description: mover
    variable: {key: MOVER, project: 42}
  - project_id: 43
    description: anchor
    variable: {key: ANCHOR}
`), true)
	assert.Check(t, is.Equal(sum.Results["created"], 2))
	old := e.fake.Runners()[0].ID
	e.fake.AddFault(gitlabfake.Fault{Method: "POST", Path: "/user/runners", Status: 500})
	_, sum = e.apply(t, e.fleet(1), parse(t, `
runners:
  - project_id: 43
    description: mover
    variable: {key: MOVER, project: 42}
  - project_id: 43
    description: anchor
    variable: {key: ANCHOR}
  - project_id: 42
    description: keeps project 42 in the manifest's owners
    variable: {key: OTHER}
`), true)
	assert.Check(t, sum.Failed > 0)
	_, ok := e.fake.Runner(old)
	assert.Check(t, ok, "the runner being replaced was pruned before its replacement existed")
}
