package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// Execute runs a plan's steps in the crash-safe order of Ensure's doc comment and returns
// the plan's result completed with what happened.
func (s *Service) Execute(ctx context.Context, r Resolved, p Plan) (Result, error) {
	res := p.Result
	if p.Err != nil {
		return res, p.Err
	}
	// The action is reported once it happened.
	action := res.Action
	res.Action = ""
	if u := p.UpdateRunner; u != nil {
		if err := s.API.UpdateRunner(ctx, u.ID, u.Attrs); err != nil {
			return res, err
		}
		s.Log.WithField("runner_id", u.ID).Infof("updated runner %d: %s", u.ID, strings.Join(res.Changes[:len(res.Diff)], ", "))
	}
	w := p.UpdateVariable
	if p.RepairRotation {
		nt, err := s.API.ResetRunnerToken(ctx, res.RunnerID)
		if err != nil {
			return res, err
		}
		w.Value = &nt.Token
		rec := record.Variable{RunnerID: res.RunnerID, TokenExpiresAt: nt.ExpiresAt, TokenSetAt: s.Now()}
		w.Description = new(rec.Description())
		res.TokenExpiresAt = nt.ExpiresAt
	}
	if w != (gitlab.VariableWrite{}) {
		if err := s.API.UpdateVariable(ctx, r.Var, w); err != nil {
			return res, err
		}
	}
	if p.Create == nil {
		res.Action = action
	}
	deleted, err := s.deleteRunners(ctx, r, p.DeleteOrphans)
	res.OrphansDeleted = deleted
	if err != nil || p.Create == nil {
		return res, err
	}
	if p.Create.Missing {
		s.Log.WithField("runner_id", res.PreviousRunnerID).Warnf("runner %d recorded in %s no longer exists; creating a replacement", res.PreviousRunnerID, r.VarName())
	}
	res, err = s.createAndStore(ctx, r, p.Create.Existing, res, 0)
	if err == nil {
		res.Action = action
	}
	if old := p.Create.Replaces; err == nil && old != 0 {
		if derr := s.API.DeleteRunner(ctx, old); derr != nil && !gitlab.IsNotFound(derr) {
			return res, fmt.Errorf("%w; the new runner %d holds the token now, but deleting the old runner %d failed: delete it by hand or run prune for its owner", derr, res.RunnerID, old)
		}
		s.Log.WithField("runner_id", old).Infof("deleted the old runner %d", old)
	}
	return res, err
}

// createAndStore creates a runner and stores its token (steps 4 to 6 of Ensure). keep is a
// marked runner that must survive until the new token is stored (rotate's recreate: the
// variable's current runner), or 0.
func (s *Service) createAndStore(ctx context.Context, r Resolved, v *gitlab.Variable, res Result, keep int64) (Result, error) {
	a := r.Attrs
	a.MaintenanceNote = record.ComposeNote(r.Attrs.MaintenanceNote, record.Runner{Target: r.Var.Target(), CreatedAt: s.Now()})
	rn := r.Spec.Runner
	if rn.TokenExpiresIn > 0 {
		// On GitLab's clock, which checks them against its own; whole seconds, as the record keeps.
		now := r.Server.Now(s.Now())
		exp := now.Add(rn.TokenExpiresIn).UTC().Truncate(time.Second)
		a.TokenExpiresAt = &exp
		if rn.TokenRotationDeadlineIn > 0 {
			dl := now.Add(rn.TokenRotationDeadlineIn).UTC().Truncate(time.Second)
			a.TokenRotationDeadline = &dl
		}
	}
	nt, err := s.API.CreateRunner(ctx, a)
	if err != nil && gitlab.IsAmbiguous(err) {
		// GitLab may have created the runner without our seeing its token: remove it, then
		// create again once (a POST is never repeated blindly).
		cleaned, cerr := s.deleteOrphans(ctx, r, func(id int64) bool { return id != keep })
		if cerr != nil {
			return res, fmt.Errorf("%w; and looking for a runner GitLab may have created anyway failed (%v): it is marked, so the next run with the same spec (or runner-bootstrap prune) deletes it", err, cerr)
		}
		res.OrphansDeleted = append(res.OrphansDeleted, cleaned...)
		s.Log.Warnf("creating the runner got no answer (%v); %d runner(s) it may have created were deleted; creating it again", err, len(cleaned))
		nt, err = s.API.CreateRunner(ctx, a)
	}
	if err != nil {
		return res, err
	}
	log := s.Log.WithField("runner_id", nt.RunnerID)
	log.Infof("created %s runner %d for %s", a.Type, nt.RunnerID, r.OwnerPath)
	if err := s.checkExpiryKept(ctx, r, a, nt); err != nil {
		return res, err
	}

	if !s.BulkReadBack {
		if newer, err := s.marked(ctx, r, func(other int64) bool { return other > nt.RunnerID }); err != nil || len(newer) > 0 {
			// A concurrent run created a newer runner: it wins, and this run stores nothing.
			s.discard(ctx, nt.RunnerID)
			if err != nil {
				return res, err
			}
			return res, errSuperseded
		}
	}

	rec := record.Variable{RunnerID: nt.RunnerID, TokenExpiresAt: nt.ExpiresAt, TokenSetAt: s.Now(),
		RotationDeadline: a.TokenRotationDeadline, ExpiresIn: rn.TokenExpiresIn, RotationDeadlineIn: rn.TokenRotationDeadlineIn}
	notes, err := s.storeNew(ctx, r, v, nt, rec)
	res.Notes = append(res.Notes, notes...)
	if err != nil {
		return res, err
	}
	log.Infof("stored its token in %s", r.VarName())
	if s.BulkReadBack {
		res.RunnerID, res.TokenExpiresAt = nt.RunnerID, nt.ExpiresAt
		return res, nil
	}

	return s.settle(ctx, r, nt, rec, res, keep)
}

// settle is step 6 of Ensure: it reads the variable back and lists the older marked runners at
// once, since a concurrent run may have stored its own runner after this one, or someone
// deleted the variable (then no runner may stay whose token is stored nowhere).
func (s *Service) settle(ctx context.Context, r Resolved, nt gitlab.NewToken, rec record.Variable, res Result, keep int64) (Result, error) {
	var got *gitlab.Variable
	var gerr error
	var older []int64
	var merr error
	var wg sync.WaitGroup
	wg.Go(func() { got, gerr = s.API.GetVariable(ctx, r.Var) })
	wg.Go(func() { older, merr = s.marked(ctx, r, func(id int64) bool { return id < nt.RunnerID && id != keep }) })
	wg.Wait()
	if gitlab.IsNotFound(gerr) {
		s.discard(ctx, nt.RunnerID)
		return res, fail.WithCode(fail.CodeFailure, fmt.Errorf("%s was gone right after the token of runner %d was stored in it (someone deleted it meanwhile), so runner %d was deleted again: run runner-bootstrap create again", r.VarName(), nt.RunnerID, nt.RunnerID))
	}
	if gerr == nil {
		if cur, ok := record.ParseVariable(got.Description); ok && cur.RunnerID != nt.RunnerID {
			if cur.RunnerID > nt.RunnerID {
				s.discard(ctx, nt.RunnerID)
				return res, errSuperseded
			}
			if _, err := s.store(ctx, r, got, nt, rec); err != nil {
				return res, err
			}
		}
	}
	if merr != nil {
		return res, merr
	}
	more, err := s.deleteRunners(ctx, r, older)
	res.OrphansDeleted = append(res.OrphansDeleted, more...)
	if err != nil {
		return res, err
	}
	if len(more) > 0 {
		// An older concurrent run may have stored its token after the read-back above, and its
		// runner is one of those just deleted: the variable would hold a dead token. This run's
		// runner is the newest, so its token goes back in.
		if got, err := s.API.GetVariable(ctx, r.Var); err == nil {
			if cur, ok := record.ParseVariable(got.Description); ok && slices.Contains(more, cur.RunnerID) {
				if _, err := s.store(ctx, r, got, nt, rec); err != nil {
					return res, err
				}
			}
		}
	}
	res.RunnerID = nt.RunnerID
	res.TokenExpiresAt = nt.ExpiresAt
	return res, nil
}

// storeNew stores a new runner's token; when that fails, the runner is deleted again so that
// no runner is left whose token is stored nowhere.
func (s *Service) storeNew(ctx context.Context, r Resolved, v *gitlab.Variable, nt gitlab.NewToken, rec record.Variable) ([]string, error) {
	notes, err := s.store(ctx, r, v, nt, rec)
	if err != nil && gitlab.IsAmbiguous(err) {
		// No answer: GitLab may have stored the token. Deleting the runner now could leave a
		// variable holding the token of a deleted runner, so decide from a read, as everywhere
		// else: the description names the new runner only if this write happened.
		got, rerr := s.API.GetVariable(ctx, r.Var)
		if rerr != nil && !gitlab.IsNotFound(rerr) {
			return notes, fmt.Errorf("%w; whether the token of runner %d was stored could not be read back either (%v), so the runner is kept: it is marked, so the next run with the same spec keeps it if its token is stored, or deletes it", err, nt.RunnerID, rerr)
		}
		if rerr == nil {
			if cur, ok := record.ParseVariable(got.Description); ok && cur.RunnerID == nt.RunnerID {
				s.Log.WithField("runner_id", nt.RunnerID).Warnf("storing the token got no answer (%v), but %s records runner %d: it was stored", err, r.VarName(), nt.RunnerID)
				err = nil
			}
		}
	}
	if err != nil {
		if derr := s.API.DeleteRunner(ctx, nt.RunnerID); derr != nil {
			return notes, fmt.Errorf("%w; runner %d was created but its token could not be stored, and deleting it failed too (%v): it is marked, so the next run with the same spec (or runner-bootstrap prune) deletes it", err, nt.RunnerID, derr)
		}
		return notes, fmt.Errorf("%w; runner %d was deleted again so that no runner is left whose token is stored nowhere", err, nt.RunnerID)
	}
	return notes, nil
}

// store writes the token and its record. A new variable is created masked (and hidden and
// protected as asked); an existing one gets a value-only update, because GitLab rejects any
// change of masked on a hidden variable.
//
// A new variable is always sent masked=true (with masked_and_hidden=true when hidden is asked
// for: GitLab before 16.11 drops that param silently), and GitLab's answer and a read-back
// are checked: a token GitLab stored unmasked is deleted at once and the run fails (the
// caller then deletes the runner). The notes say where hidden was asked but not done.
func (s *Service) store(ctx context.Context, r Resolved, v *gitlab.Variable, nt gitlab.NewToken, rec record.Variable) ([]string, error) {
	desc := rec.Description()
	if v == nil {
		w := gitlab.VariableWrite{
			Value: &nt.Token, Description: &desc, Protected: &r.Spec.Variable.Protected,
			Masked: new(true), Hidden: r.Spec.Variable.Hidden && r.Var.Owner != spec.OwnerInstance, Type: &r.Spec.Variable.Type, Raw: new(false),
		}
		err := s.API.CreateVariable(ctx, r.Var, w)
		if err == nil || !gitlab.IsTaken(err) {
			return s.checkCreated(ctx, r, nt.RunnerID, err)
		}
		// Someone created it since step 1: a concurrent run of this tool (update it), or a
		// person (never overwrite their variable with a token).
		got, err := s.API.GetVariable(ctx, r.Var)
		if err != nil {
			return nil, err
		}
		if _, ok := record.ParseVariable(got.Description); !ok {
			return nil, notManaged(r.VarName())
		}
		if err := checkVisibility(r, got); err != nil {
			return nil, err
		}
	}
	return nil, s.API.UpdateVariable(ctx, r.Var, gitlab.VariableWrite{Value: &nt.Token, Description: &desc})
}

// checkVisibility refuses what GitLab cannot change on an existing variable. A GitLab that
// cannot hide variables (before 16.11) stores them unhidden whatever was asked; one whose
// version is unknown may be such a GitLab, so an unhidden variable is accepted there too.
func checkVisibility(r Resolved, v *gitlab.Variable) error {
	want := wantHidden(r.Server, r)
	if want && !v.Hidden && r.Server.Source == gitlab.SourceProbe {
		return nil
	}
	if v.Hidden != want {
		state := map[bool]string{true: "hidden", false: "not hidden"}
		return fail.WithCode(fail.CodeConflict, fmt.Errorf("%s is %s and GitLab cannot change that after creation: run runner-bootstrap delete for it first, or keep --variable-hidden=%t", r.VarName(), state[v.Hidden], v.Hidden))
	}
	return nil
}

// scopeDropped handles a group variable GitLab stored under scope * instead of the scope asked
// for: without a Premium licence EE silently drops environment_scope on group variables, and
// the variable then lands where no later run would look for it.
func (s *Service) scopeDropped(ctx context.Context, r Resolved) error {
	dropped := r.Var
	dropped.Scope = spec.DefaultScope
	if derr := s.API.DeleteVariable(ctx, dropped); derr != nil && !gitlab.IsNotFound(derr) {
		return fmt.Errorf("GitLab stored %s under scope * (it drops environment scopes of group variables without a Premium licence), and deleting it failed (%w): delete it by hand", r.VarName(), derr)
	}
	return fail.WithCode(fail.CodeConflict, fmt.Errorf("GitLab ignored the environment scope %q of the group variable %s (scoped group variables need GitLab Premium); use --variable-environment-scope '*' or store the token in a project variable", r.Var.Scope, r.Var.Key))
}

// deleteOrphans lists the marked runners for which pick is true and deletes them.
func (s *Service) deleteOrphans(ctx context.Context, r Resolved, pick func(int64) bool) ([]int64, error) {
	ids, err := s.marked(ctx, r, pick)
	if err != nil {
		return nil, err
	}
	return s.deleteRunners(ctx, r, ids)
}

// deleteRunners deletes marked runners whose token r's variable does not hold.
func (s *Service) deleteRunners(ctx context.Context, r Resolved, ids []int64) ([]int64, error) {
	var deleted []int64
	for _, id := range ids {
		if err := s.API.DeleteRunner(ctx, id); err != nil && !gitlab.IsNotFound(err) {
			return deleted, err
		}
		s.Log.WithField("runner_id", id).Warnf("deleted runner %d: it was created for %s but its token is not stored there (an interrupted or concurrent run)", id, r.VarName())
		deleted = append(deleted, id)
	}
	return deleted, nil
}

// discard deletes a runner this run created and no longer needs; a failure is only logged
// because the runner is marked and the next run deletes it.
func (s *Service) discard(ctx context.Context, id int64) {
	if err := s.API.DeleteRunner(ctx, id); err != nil && !gitlab.IsNotFound(err) {
		s.Log.WithField("runner_id", id).Warnf("could not delete runner %d (%v); it is marked, so the next run with the same spec (or runner-bootstrap prune) deletes it", id, err)
	}
}
