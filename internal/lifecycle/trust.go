package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// ErrNotCreatedFor is wrapped by the error of every command that refused to act on the
// runner a variable's description names because that runner does not carry the tool's marker
// for exactly that variable.
var ErrNotCreatedFor = errors.New("the variable does not name a runner created for it")

// recordedRunner reads the runner that a managed variable's record names and accepts it only
// when it is a runner this tool created for exactly that variable: its maintenance note ends
// with the marker naming r.Var (owner kind, owner id, key and environment scope).
//
// This is the one trust check every command that follows a description to a runner goes
// through (create and apply's converge and replace paths, rotate, rotate --all, status,
// delete). The description is written by whoever can write the variable, any Maintainer of
// its project, so on its own it proves nothing: a planted runner_id would make an
// administrator's scheduled rotation reset another project's (or an instance) runner and
// write its new token where the planter reads it. The maintenance note can only be written by
// those who can edit the runner, and GitLab shows it only to those who can update the runner,
// so a marker naming this variable means the runner's owners, not the variable's writers,
// said it belongs to this variable.
//
// A missing runner gives GitLab's 404 (IsNotFound); any other refusal wraps ErrNotCreatedFor.
func (s *Service) recordedRunner(ctx context.Context, r Resolved, rec record.Variable) (*gitlab.Runner, error) {
	return recordedRunnerFrom(ctx, s.API, r, rec)
}

// recordedRunnerFrom is recordedRunner with the runner read from rd (Observe's reads).
func recordedRunnerFrom(ctx context.Context, rd Reads, r Resolved, rec record.Variable) (*gitlab.Runner, error) {
	runner, err := rd.GetRunner(ctx, rec.RunnerID)
	if err != nil {
		return nil, err
	}
	if err := createdFor(r, rec.RunnerID, runner); err != nil {
		return nil, err
	}
	return runner, nil
}

// createdFor checks the marker of a runner read for r's variable.
func createdFor(r Resolved, id int64, runner *gitlab.Runner) error {
	_, m, ok := record.ParseNote(runner.MaintenanceNote)
	why := "whose maintenance note carries no runner-bootstrap marker (or GitLab hides the note because the access token cannot update the runner)"
	if ok {
		if m.Target == r.Var.Target() && runner.ID == id {
			return nil
		}
		why = "whose marker names " + m.Target
	}
	return fail.WithCode(fail.CodeConflict, &notCreatedForError{fmt.Sprintf("%s does not name a runner created for it: its description records runner %d, %s; nothing was changed (someone may have edited the description: delete the variable by hand and run runner-bootstrap create again)", r.VarName(), id, why)})
}

type notCreatedForError struct{ msg string }

func (e *notCreatedForError) Error() string        { return e.msg }
func (e *notCreatedForError) Is(target error) bool { return target == ErrNotCreatedFor }

// OwnedBy reports whether GitLab says the runner belongs to the owner kind and id as a runner
// of type typ: a group's runner list also shows its ancestors' runners, and a project's list
// shows project runners other projects own and share with it. A project runner enabled in
// several projects is owned by none of them here, so nothing that lists one project deletes it.
func OwnedBy(d *gitlab.Runner, kind spec.OwnerKind, id int64, typ spec.RunnerType) bool {
	if d.Type != string(typ) {
		return false
	}
	switch kind {
	case spec.OwnerProject:
		return len(d.ProjectIDs) == 1 && d.ProjectIDs[0] == id
	case spec.OwnerGroup:
		return len(d.GroupIDs) > 0 && d.GroupIDs[0] == id
	}
	// An administrator listing the instance sees, and owns, every runner of the type asked.
	return true
}
