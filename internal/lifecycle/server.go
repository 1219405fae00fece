package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// This file is where lifecycle adapts to the GitLab it talks to. Every version question goes
// through gitlab.Server.Has, whose capability table is the only place that knows versions.

// Refusal is a check a command makes before any write, with the reason it would fail; check
// reports these as its steps.
type Refusal struct {
	Capability gitlab.Capability
	Err        error
}

// refusals lists what this server cannot do safely for r, each as a sentence naming the
// version needed. creating says whether the command may create a runner or a variable.
func refusals(srv gitlab.Server, r Resolved, creating bool) []Refusal {
	var out []Refusal
	desc := gitlab.CapVariableDescription
	if r.Var.Owner == spec.OwnerInstance {
		desc = gitlab.CapInstanceVariableDescription
	}
	if !srv.Has(desc) {
		out = append(out, Refusal{desc, fail.Usagef("%s drops the description of %s variables (it needs %s), and the description is the only link from the variable to its runner that survives every failure; nothing was changed: upgrade GitLab, or store the token in a project or group variable", srv, r.Var.Owner, gitlab.Requirement(desc))})
	}
	sp := r.Spec.Runner
	if creating && (sp.TokenExpiresIn > 0 || sp.TokenRotationDeadlineIn > 0) && !srv.Has(gitlab.CapTokenExpiryAtCreate) {
		out = append(out, Refusal{gitlab.CapTokenExpiryAtCreate, fail.Usagef("%s would silently drop token_expires_in and token_rotation_deadline_in (they need %s); nothing was changed: remove them to use GitLab's own token expiry settings", srv, gitlab.Requirement(gitlab.CapTokenExpiryAtCreate))})
	}
	return out
}

// adapt refuses, before any write, what r cannot do on this server, and returns the notes the
// output carries about what GitLab will do differently.
func adapt(srv gitlab.Server, r Resolved, creating bool) ([]string, error) {
	if rs := refusals(srv, r, creating); len(rs) > 0 {
		return nil, rs[0].Err
	}
	return storageNotes(srv, r), nil
}

// Refuse is what Ensure refuses before anything is read or written, for callers that plan
// many entries and execute them later (apply): r.Server must be filled. It also returns the
// notes on what GitLab will store differently from what was asked.
func Refuse(r Resolved) ([]string, error) {
	return adapt(r.Server, r, true)
}

// storageNotes says how the token will really be stored, where that is less than asked.
func storageNotes(srv gitlab.Server, r Resolved) []string {
	var notes []string
	if !srv.Known() {
		notes = append(notes, "the GitLab version could not be read (the access token may not read /metadata); GitLab's answers were checked instead")
	}
	v := r.Spec.Variable
	how := "masked and protected"
	if !v.Protected {
		how = "masked, not protected"
	}
	switch {
	case !v.Hidden:
	case r.Var.Owner == spec.OwnerInstance:
		notes = append(notes, instanceNote)
	case !srv.Has(gitlab.CapMaskedAndHidden):
		notes = append(notes, fmt.Sprintf("GitLab %s cannot hide CI/CD variables (%s can); the token is stored %s", srv.Version.MinorString(), gitlab.Requirement(gitlab.CapMaskedAndHidden), how))
	case !srv.Has(gitlab.CapHiddenEnforced):
		notes = append(notes, fmt.Sprintf("GitLab %s stores the variable hidden but still shows its value to Maintainers until the ci_hidden_variables feature flag is on (the default from %s); the token is stored %s", srv.Version.MinorString(), gitlab.Requirement(gitlab.CapHiddenEnforced), how))
	}
	return notes
}

// instanceNote is also what Decide says; Ensure prints it once.
const instanceNote = "instance variables cannot be hidden; the token is stored masked"

// wantHidden is whether r's variable is, and can be, hidden on this server.
func wantHidden(srv gitlab.Server, r Resolved) bool {
	return r.Spec.Variable.Hidden && r.Var.Owner != spec.OwnerInstance && srv.Has(gitlab.CapMaskedAndHidden)
}

// checkGroupFilter refuses to update a group variable on a GitLab whose PUT ignores
// filter[environment_scope] (before 16.9) when other variables share its key: GitLab would
// update whichever it finds first, and could move it to another scope.
func (s *Service) checkGroupFilter(ctx context.Context, r Resolved) error {
	if r.Var.Owner != spec.OwnerGroup || r.Server.Has(gitlab.CapGroupVariableFilterUpdate) {
		return nil
	}
	vars, err := s.API.ListVariables(ctx, r.Var.Owner, r.Var.OwnerID)
	if err != nil {
		return err
	}
	n := 0
	for _, v := range vars {
		if v.Key == r.Var.Key {
			n++
		}
	}
	if n > 1 {
		return fail.WithCode(fail.CodeConflict, fmt.Errorf("%s ignores the environment scope when it updates a group variable (%s does not), and group %d has %d variables named %s: an update could change the wrong one; nothing was changed: give this variable a key of its own", r.Server, gitlab.Requirement(gitlab.CapGroupVariableFilterUpdate), r.Var.OwnerID, n, r.Var.Key))
	}
	return nil
}

// undoCreate deletes a variable this run just created because GitLab did not store it as
// asked. A group variable may have landed in scope * (EE Free drops group scopes).
func (s *Service) undoCreate(ctx context.Context, r Resolved) error {
	err := s.API.DeleteVariable(ctx, r.Var)
	if gitlab.IsNotFound(err) && r.Var.Owner == spec.OwnerGroup && r.Var.Scope != spec.DefaultScope {
		star := r.Var
		star.Scope = spec.DefaultScope
		err = s.API.DeleteVariable(ctx, star)
	}
	if gitlab.IsNotFound(err) {
		return nil
	}
	return err
}

// checkCreated reads a just-created variable back and fails closed when the token is not
// masked: it deletes the variable at once (the caller deletes the runner), so a visible token
// never stays on GitLab. It returns a note when hidden was asked and possible but not done.
func (s *Service) checkCreated(ctx context.Context, r Resolved, runnerID int64, createErr error) ([]string, error) {
	if createErr != nil {
		if !errors.Is(createErr, gitlab.ErrStoredUnmasked) && !errors.Is(createErr, gitlab.ErrDescriptionDropped) {
			return nil, createErr
		}
		if err := s.undoCreate(ctx, r); err != nil {
			return nil, fmt.Errorf("%w, and deleting it again failed (%v): delete %s by hand now, its token is readable", createErr, err, r.Var)
		}
		return nil, fmt.Errorf("%w; the variable was deleted again at once", createErr)
	}
	if s.BulkReadBack {
		// apply reads every variable back at once; the POST answer was checked above.
		return nil, nil
	}
	got, err := s.API.GetVariable(ctx, r.Var)
	if gitlab.IsNotFound(err) && r.Var.Owner == spec.OwnerGroup && r.Var.Scope != spec.DefaultScope {
		return nil, s.scopeDropped(ctx, r)
	}
	if gitlab.IsNotFound(err) {
		return nil, fail.WithCode(fail.CodeFailure, fmt.Errorf("%s was gone right after the token of runner %d was stored in it (someone deleted it meanwhile)", r.VarName(), runnerID))
	}
	if err != nil {
		return nil, err
	}
	if !got.Masked {
		uerr := fail.WithCode(fail.CodeConflict, fmt.Errorf("%w: reading %s back shows it unmasked although masked=true was sent", gitlab.ErrStoredUnmasked, r.Var))
		return s.checkCreated(ctx, r, runnerID, uerr)
	}
	if wantHidden(r.Server, r) && !got.Hidden {
		return []string{fmt.Sprintf("GitLab did not store %s hidden although it was asked to (is the ci_hidden_variables feature flag off?); the token is stored masked", r.Var)}, nil
	}
	return nil, nil
}

// withServer fills r.Server when the caller built r without Resolve (rotate --all).
func (s *Service) withServer(ctx context.Context, r *Resolved) error {
	if r.Server.Source != "" {
		return nil
	}
	srv, err := s.API.Server(ctx)
	r.Server = srv
	return err
}

// checkExpiryKept makes sure GitLab honoured the token expiry asked for at creation. An EE
// build without a Premium licence drops it silently, and only an administrator can read the
// licence beforehand; so the runner is deleted again and the run fails before any variable
// is written.
func (s *Service) checkExpiryKept(ctx context.Context, r Resolved, a gitlab.RunnerAttrs, nt gitlab.NewToken) error {
	if a.TokenExpiresAt == nil {
		return nil
	}
	if nt.ExpiresAt != nil && nt.ExpiresAt.Sub(*a.TokenExpiresAt).Abs() < time.Minute {
		return nil
	}
	why := fail.Usagef("%s dropped token_expires_at and token_rotation_deadline (they need %s, and this server's licence may be Free); runner %d was deleted again and no variable was written: remove token_expires_in and token_rotation_deadline_in", r.Server, gitlab.Requirement(gitlab.CapTokenExpiryAtCreate), nt.RunnerID)
	if err := s.API.DeleteRunner(ctx, nt.RunnerID); err != nil && !gitlab.IsNotFound(err) {
		return fmt.Errorf("%w; but deleting runner %d failed too (%v): it is marked, so the next run with the same spec (or runner-bootstrap prune) deletes it", why, nt.RunnerID, err)
	}
	return why
}
