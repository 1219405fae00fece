package lifecycle_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// decideResolved is a project runner of project 42 whose token goes to project 42's
// RUNNER_TOKEN, resolved by hand: Decide needs no GitLab.
func decideResolved() lifecycle.Resolved {
	sp := spec.New()
	sp.Runner.ProjectRef = "platform/deploy"
	sp.Runner.Description = "deploy"
	sp.Runner.TagList = []string{"docker"}
	sp.DefaultOwner()
	return lifecycle.Resolved{
		Spec: sp,
		Attrs: gitlab.RunnerAttrs{
			Type: spec.ProjectType, ProjectID: 42, Description: "deploy", TagList: []string{"docker"},
			RunUntagged: true, AccessLevel: spec.NotProtected,
		},
		Var:          gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: 42, Key: "RUNNER_TOKEN", Scope: "*"},
		OwnerPath:    "project platform/deploy",
		VarOwnerPath: "project platform/deploy",
	}
}

// managed is the variable and runner a first create leaves behind for decideResolved.
func managed(r lifecycle.Resolved, id int64) (lifecycle.State, *gitlab.Runner) {
	rec := record.Variable{RunnerID: id, TokenSetAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	v := &gitlab.Variable{Key: r.Var.Key, Scope: "*", Description: rec.Description(), Type: spec.EnvVar, Protected: true, Masked: true, Hidden: true}
	runner := &gitlab.Runner{
		ID: id, Type: string(spec.ProjectType), Description: "deploy", TagList: []string{"docker"}, RunUntagged: true,
		AccessLevel: spec.NotProtected, ProjectIDs: []int64{42},
		MaintenanceNote: record.ComposeNote("", record.Runner{Target: r.Var.Target(), CreatedAt: rec.TokenSetAt}),
	}
	return lifecycle.State{Variable: v, Record: rec, RecordOK: true, Runner: runner}, runner
}

func TestDecide(t *testing.T) {
	r := decideResolved()
	notFound := fmt.Errorf("runner 7 was not found (404): %w", gitlab.ErrNotFound)
	listFailed := errors.New("cannot list the runners of project platform/deploy: 500")
	cases := []struct {
		name  string
		state func() lifecycle.State
		check func(t *testing.T, p lifecycle.Plan)
	}{
		{
			name:  "NothingExists",
			state: func() lifecycle.State { return lifecycle.State{} },
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.NilError(t, p.Err)
				assert.DeepEqual(t, p.Create, &lifecycle.CreateStep{})
				assert.Check(t, is.Equal(p.Result.Action, lifecycle.ActionCreated))
				assert.Check(t, is.Len(p.DeleteOrphans, 0))
				assert.Check(t, p.UpdateRunner == nil)
				assert.Check(t, p.Writes())
			},
		},
		{
			name:  "OrphansOfAKilledRunAreDeletedBeforeTheCreate",
			state: func() lifecycle.State { return lifecycle.State{Marked: []int64{5, 9}} },
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.DeepEqual(t, p.DeleteOrphans, []int64{5, 9})
				assert.Assert(t, p.Create != nil)
			},
		},
		{
			name: "AForeignVariableIsRefused",
			state: func() lifecycle.State {
				return lifecycle.State{Variable: &gitlab.Variable{Key: "RUNNER_TOKEN", Description: "mine"}}
			},
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.ErrorContains(t, p.Err, "was not written by runner-bootstrap")
				assert.Check(t, is.Equal(fail.Code(p.Err), fail.CodeConflict))
				assert.Check(t, !p.Writes())
			},
		},
		{
			name: "AVariableThatIsNotHiddenCannotBecomeHidden",
			state: func() lifecycle.State {
				st, _ := managed(r, 7)
				st.Variable.Hidden = false
				return st
			},
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.ErrorContains(t, p.Err, "GitLab cannot change that after creation")
				assert.Check(t, !p.Writes())
			},
		},
		{
			name:  "UnchangedWritesNothing",
			state: func() lifecycle.State { st, _ := managed(r, 7); return st },
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.NilError(t, p.Err)
				assert.Check(t, is.Equal(p.Result.Action, lifecycle.ActionUnchanged))
				assert.Check(t, is.Equal(p.Result.RunnerID, int64(7)))
				assert.Check(t, !p.Writes())
			},
		},
		{
			name: "DriftUpdatesTheRunnerInPlaceKeepingItsMarker",
			state: func() lifecycle.State {
				st, runner := managed(r, 7)
				runner.TagList = []string{"old"}
				return st
			},
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.Assert(t, p.UpdateRunner != nil)
				assert.Check(t, is.Equal(p.UpdateRunner.ID, int64(7)))
				assert.Check(t, is.DeepEqual(p.UpdateRunner.Attrs.TagList, []string{"docker"}))
				_, m, ok := record.ParseNote(p.UpdateRunner.Attrs.MaintenanceNote)
				assert.Check(t, ok && m.Target == r.Var.Target(), "the update drops the marker: %q", p.UpdateRunner.Attrs.MaintenanceNote)
				assert.Check(t, is.DeepEqual(p.Result.Diff, []lifecycle.Change{{Attribute: "tag_list", Old: "old", New: "docker"}}))
				assert.Check(t, is.Equal(p.Result.Action, lifecycle.ActionUpdated))
				assert.Check(t, p.Create == nil)
			},
		},
		{
			name: "AnInterruptedRotationIsRepaired",
			state: func() lifecycle.State {
				st, _ := managed(r, 7)
				st.Record.RotationPending = true
				return st
			},
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.Check(t, p.RepairRotation)
				assert.Check(t, is.Contains(p.Result.Changes, "token (an interrupted rotation left a stale value)"))
				assert.Check(t, p.Writes())
			},
		},
		{
			name: "OrphansBesideAKeptRunnerAreDeleted",
			state: func() lifecycle.State {
				st, _ := managed(r, 7)
				st.Marked = []int64{8}
				return st
			},
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.DeepEqual(t, p.DeleteOrphans, []int64{8})
				assert.Check(t, p.Create == nil)
			},
		},
		{
			name: "AMissingRunnerIsReplacedInTheSameVariable",
			state: func() lifecycle.State {
				st, _ := managed(r, 7)
				st.Runner, st.RunnerErr = nil, notFound
				return st
			},
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.NilError(t, p.Err)
				assert.Assert(t, p.Create != nil)
				assert.Check(t, p.Create.Missing)
				assert.Check(t, p.Create.Existing != nil)
				assert.Check(t, is.Equal(p.Create.Replaces, int64(0)))
				assert.Check(t, is.Equal(p.Result.PreviousRunnerID, int64(7)))
				assert.Check(t, is.Equal(p.Result.Action, lifecycle.ActionReplaced))
			},
		},
		{
			name: "ARunnerOfAnotherOwnerIsReplacedAndDeletedAfterTheStore",
			state: func() lifecycle.State {
				st, runner := managed(r, 7)
				runner.Type, runner.ProjectIDs, runner.GroupIDs = string(spec.GroupType), nil, []int64{3}
				return st
			},
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.Assert(t, p.Create != nil)
				assert.Check(t, is.Equal(p.Create.Replaces, int64(7)))
				assert.Check(t, is.DeepEqual(p.Result.Changes, []string{"runner type or owner (was group_type)"}))
			},
		},
		{
			name: "ARunnerNotCreatedForTheVariableIsRefused",
			state: func() lifecycle.State {
				st, _ := managed(r, 7)
				st.Runner, st.RunnerErr = nil, fmt.Errorf("refused: %w", lifecycle.ErrNotCreatedFor)
				return st
			},
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.Check(t, errors.Is(p.Err, lifecycle.ErrNotCreatedFor))
				assert.Check(t, !p.Writes())
			},
		},
		{
			name:  "AFailedRunnerListStopsACreate",
			state: func() lifecycle.State { return lifecycle.State{MarkedErr: listFailed} },
			check: func(t *testing.T, p lifecycle.Plan) {
				assert.Check(t, errors.Is(p.Err, listFailed))
				assert.Check(t, !p.Writes())
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t, lifecycle.Decide(r, c.state())) })
	}
}

func TestDecideNotesThatInstanceVariablesCannotBeHidden(t *testing.T) {
	r := decideResolved()
	r.Var = gitlab.VarRef{Owner: spec.OwnerInstance, Key: "RUNNER_TOKEN", Scope: "*"}
	p := lifecycle.Decide(r, lifecycle.State{})
	assert.DeepEqual(t, p.Result.Notes, []string{"instance variables cannot be hidden; the token is stored masked"})
}

func TestDecideMasksAnUnmaskedVariable(t *testing.T) {
	r := decideResolved()
	r.Spec.Variable.Hidden = false
	st, _ := managed(r, 7)
	st.Variable.Masked, st.Variable.Hidden = false, false
	p := lifecycle.Decide(r, st)
	assert.NilError(t, p.Err)
	assert.DeepEqual(t, p.UpdateVariable, gitlab.VariableWrite{Masked: new(true), Raw: new(false)})
	assert.Check(t, is.DeepEqual(p.Result.Changes, []string{"variable masked"}))
	assert.Check(t, is.Equal(p.Result.Action, lifecycle.ActionUpdated))
	assert.Check(t, p.UpdateRunner == nil)
}
