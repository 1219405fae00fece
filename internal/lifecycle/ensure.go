package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// errSuperseded means a concurrent run created a newer runner for the same variable; the
// losing run deletes its own runner and looks again.
var errSuperseded = errors.New("superseded by a concurrent run")

const ensureAttempts = 3

// Ensure makes the runner and its variable match r. Order of operations, and why each step
// is safe to interrupt:
//
//  1. read the variable and the runner it records (reads only);
//  2. runner present: update it in place (PUT) if the spec changed; the token is untouched;
//  3. otherwise delete orphans: runners whose maintenance note names this variable but that the
//     variable does not name (a run was killed between creating a runner and storing its token);
//  4. create the runner with that marker already in its maintenance note, so if the run dies
//     now the next run finds it in step 3;
//  5. store the token (the only copy, from the API response) with the runner id in the
//     variable's description; if storing fails, delete the runner just created;
//  6. read the variable back and delete older marked runners, so two concurrent runs end with
//     one runner (the newest wins; the loser deletes its own).
func (s *Service) Ensure(ctx context.Context, r Resolved) (Result, error) {
	for attempt := 1; ; attempt++ {
		res, err := s.ensureOnce(ctx, r)
		if !errors.Is(err, errSuperseded) || attempt == ensureAttempts {
			return res, err
		}
		s.Log.WithField("attempt", attempt).Info("a concurrent run created a newer runner for this variable; looking again")
		s.Pause(time.Duration(attempt) * 500 * time.Millisecond)
	}
}

func (s *Service) ensureOnce(ctx context.Context, r Resolved) (Result, error) {
	res := s.result(r, "")
	if r.Var.Owner == spec.OwnerInstance && r.Spec.Variable.Hidden {
		res.Notes = append(res.Notes, "instance variables cannot be hidden; the token is stored masked")
	}
	v, err := s.API.GetVariable(ctx, r.Var)
	if err != nil && !gitlab.IsNotFound(err) {
		return res, err
	}
	var rec record.Variable
	if v != nil {
		var ok bool
		if rec, ok = record.ParseVariable(v.Description); !ok {
			return res, notManaged(r.VarName())
		}
		if err := checkVisibility(r, v); err != nil {
			return res, err
		}
	}
	moved := int64(0)
	if v != nil {
		runner, err := s.recordedRunner(ctx, r, rec)
		switch {
		case err == nil && s.sameOwner(r, runner):
			return s.converge(ctx, r, v, rec, runner, res)
		case err == nil:
			// The runner type or owner changed: GitLab cannot move a runner, so it is replaced,
			// and the old one deleted once the new token is stored.
			res.PreviousRunnerID = rec.RunnerID
			res.Changes = append(res.Changes, fmt.Sprintf("runner type or owner (was %s)", runner.Type))
			moved = rec.RunnerID
		case gitlab.IsNotFound(err):
			res.PreviousRunnerID = rec.RunnerID
			s.Log.WithField("runner_id", rec.RunnerID).Warnf("runner %d recorded in %s no longer exists; creating a replacement", rec.RunnerID, r.VarName())
		default:
			return res, err
		}
	}
	res, err = s.createAndStore(ctx, r, v, res)
	if err == nil && moved != 0 {
		if derr := s.API.DeleteRunner(ctx, moved); derr != nil && !gitlab.IsNotFound(derr) {
			return res, fmt.Errorf("%w; the new runner %d holds the token now, but deleting the old runner %d failed: delete it by hand or run prune for its owner", derr, res.RunnerID, moved)
		}
		s.Log.WithField("runner_id", moved).Infof("deleted the old runner %d", moved)
	}
	return res, err
}

// checkVisibility refuses what GitLab cannot change on an existing variable.
func checkVisibility(r Resolved, v *gitlab.Variable) error {
	want := r.Spec.Variable.Hidden && r.Var.Owner != spec.OwnerInstance
	if v.Hidden != want {
		state := map[bool]string{true: "hidden", false: "not hidden"}
		return fail.WithCode(fail.CodeConflict, fmt.Errorf("%s is %s and GitLab cannot change that after creation: run runner-bootstrap delete for it first, or keep --variable-hidden=%t", r.VarName(), state[v.Hidden], v.Hidden))
	}
	return nil
}

func (s *Service) sameOwner(r Resolved, runner *gitlab.Runner) bool {
	if runner.Type != string(r.Attrs.Type) {
		return false
	}
	switch r.Attrs.Type {
	case spec.ProjectType:
		// GitLab lists a runner's projects in no particular order.
		return slices.Contains(runner.ProjectIDs, r.Attrs.ProjectID)
	case spec.GroupType:
		return slices.Contains(runner.GroupIDs, r.Attrs.GroupID)
	}
	return true
}

// converge updates an existing runner and variable in place; it writes nothing when both
// already match.
func (s *Service) converge(ctx context.Context, r Resolved, v *gitlab.Variable, rec record.Variable, runner *gitlab.Runner, res Result) (Result, error) {
	res.RunnerID = runner.ID
	res.TokenExpiresAt = rec.TokenExpiresAt
	// recordedRunner accepted it, so it carries the marker for this variable.
	userNote, marker, _ := record.ParseNote(runner.MaintenanceNote)
	want := r.Attrs
	want.MaintenanceNote = record.ComposeNote(r.Attrs.MaintenanceNote, marker)
	diff := runnerChanges(r.Attrs, userNote, runner)
	var changes []string
	for _, d := range diff {
		changes = append(changes, d.Attribute)
	}
	res.Diff = diff
	if len(changes) > 0 {
		if err := s.API.UpdateRunner(ctx, runner.ID, want); err != nil {
			return res, err
		}
		s.Log.WithField("runner_id", runner.ID).Infof("updated runner %d: %s", runner.ID, strings.Join(changes, ", "))
	}
	w := gitlab.VariableWrite{}
	if !v.Masked && !v.Hidden {
		// Someone unmasked it: a token must never show in job logs. Allowed, as it is not hidden.
		w.Masked, w.Raw = new(true), new(false)
		changes = append(changes, "variable masked")
	}
	if v.Protected != r.Spec.Variable.Protected {
		w.Protected = &r.Spec.Variable.Protected
		changes = append(changes, "variable protected")
	}
	if v.Type != r.Spec.Variable.Type {
		w.Type = &r.Spec.Variable.Type
		changes = append(changes, "variable type")
	}
	if rec.RotationPending {
		// A rotation reset the token but died before storing the new one: the stored value is
		// invalid. Repair by rotating now.
		nt, err := s.API.ResetRunnerToken(ctx, runner.ID)
		if err != nil {
			return res, err
		}
		w.Value = &nt.Token
		rec = record.Variable{RunnerID: runner.ID, TokenExpiresAt: nt.ExpiresAt, TokenSetAt: s.Now()}
		w.Description = new(rec.Description())
		res.TokenExpiresAt = nt.ExpiresAt
		changes = append(changes, "token (an interrupted rotation left a stale value)")
	}
	if w != (gitlab.VariableWrite{}) {
		if err := s.API.UpdateVariable(ctx, r.Var, w); err != nil {
			return res, err
		}
	}
	res.Changes = changes
	res.Action = ActionUnchanged
	if len(changes) > 0 {
		res.Action = ActionUpdated
	}
	deleted, err := s.deleteOrphans(ctx, r, func(id int64) bool { return id != runner.ID })
	res.OrphansDeleted = deleted
	return res, err
}

// runnerChanges lists the attributes that differ between the spec and GitLab, with the value
// GitLab has and the one the update sets.
func runnerChanges(a gitlab.RunnerAttrs, userNote string, r *gitlab.Runner) []Change {
	var c []Change
	add := func(cond bool, name, old, new string) {
		if cond {
			c = append(c, Change{Attribute: name, Old: old, New: new})
		}
	}
	wantNote := strings.TrimRight(a.MaintenanceNote, "\n ")
	add(r.Description != a.Description, "description", quoted(r.Description), quoted(a.Description))
	add(!sameTags(r.TagList, a.TagList), "tag_list", tags(r.TagList), tags(a.TagList))
	add(r.RunUntagged != a.RunUntagged, "run_untagged", fmt.Sprint(r.RunUntagged), fmt.Sprint(a.RunUntagged))
	add(r.Locked != a.Locked, "locked", fmt.Sprint(r.Locked), fmt.Sprint(a.Locked))
	add(r.Paused != a.Paused, "paused", fmt.Sprint(r.Paused), fmt.Sprint(a.Paused))
	add(r.AccessLevel != a.AccessLevel, "access_level", r.AccessLevel, a.AccessLevel)
	add(r.MaximumTimeout != a.MaximumTimeout, "maximum_timeout", timeout(r.MaximumTimeout), timeout(a.MaximumTimeout))
	add(userNote != wantNote, "maintenance_note", quoted(userNote), quoted(wantNote))
	return c
}

// Change is one runner attribute an update sets: the value GitLab has and the new one. A key
// left out of a manifest resets its attribute, which shows here (maximum_timeout 3600 → none).
type Change struct {
	Attribute string `json:"attribute"`
	Old       string `json:"old"`
	New       string `json:"new"`
}

func (c Change) String() string { return c.Attribute + " " + c.Old + " → " + c.New }

// DescribeChanges is changes (attribute names and variable fixes) with each runner attribute
// shown as old → new where diff has it.
func DescribeChanges(changes []string, diff []Change) []string {
	out := make([]string, 0, len(changes))
	for _, name := range changes {
		s := name
		for _, d := range diff {
			if d.Attribute == name {
				s = d.String()
			}
		}
		out = append(out, s)
	}
	return out
}

func quoted(s string) string {
	if s == "" {
		return "none"
	}
	if r := []rune(s); len(r) > 40 {
		s = string(r[:39]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

func tags(t []string) string {
	if len(t) == 0 {
		return "none"
	}
	return strings.Join(t, ",")
}

func timeout(seconds int64) string {
	if seconds == 0 {
		return "none"
	}
	return fmt.Sprint(seconds)
}

// createAndStore creates a runner and stores its token (steps 3 to 6 of Ensure).
func (s *Service) createAndStore(ctx context.Context, r Resolved, v *gitlab.Variable, res Result) (Result, error) {
	deleted, err := s.deleteOrphans(ctx, r, func(int64) bool { return true })
	res.OrphansDeleted = deleted
	if err != nil {
		return res, err
	}
	a := r.Attrs
	a.MaintenanceNote = record.ComposeNote(r.Attrs.MaintenanceNote, record.Runner{Target: r.Var.Target(), CreatedAt: s.Now()})
	nt, err := s.API.CreateRunner(ctx, a)
	if err != nil && gitlab.IsAmbiguous(err) {
		// GitLab may have created the runner without our seeing its token: remove it, then
		// create again once (a POST is never repeated blindly).
		cleaned, cerr := s.deleteOrphans(ctx, r, func(int64) bool { return true })
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

	if newer, err := s.newerMarked(ctx, r, nt.RunnerID); err != nil || newer {
		s.discard(ctx, nt.RunnerID)
		if err != nil {
			return res, err
		}
		return res, errSuperseded
	}

	rec := record.Variable{RunnerID: nt.RunnerID, TokenExpiresAt: nt.ExpiresAt, TokenSetAt: s.Now()}
	err = s.store(ctx, r, v, nt, rec)
	if err != nil && gitlab.IsAmbiguous(err) {
		// No answer: GitLab may have stored the token. Deleting the runner now could leave a
		// variable holding the token of a deleted runner, so decide from a read, as everywhere
		// else: the description names the new runner only if this write happened.
		got, rerr := s.API.GetVariable(ctx, r.Var)
		if rerr != nil && !gitlab.IsNotFound(rerr) {
			return res, fmt.Errorf("%w; whether the token of runner %d was stored could not be read back either (%v), so the runner is kept: it is marked, so the next run with the same spec keeps it if its token is stored, or deletes it", err, nt.RunnerID, rerr)
		}
		if rerr == nil {
			if cur, ok := record.ParseVariable(got.Description); ok && cur.RunnerID == nt.RunnerID {
				log.Warnf("storing the token got no answer (%v), but %s records runner %d: it was stored", err, r.VarName(), nt.RunnerID)
				err = nil
			}
		}
	}
	if err != nil {
		if derr := s.API.DeleteRunner(ctx, nt.RunnerID); derr != nil {
			return res, fmt.Errorf("%w; runner %d was created but its token could not be stored, and deleting it failed too (%v): it is marked, so the next run with the same spec (or runner-bootstrap prune) deletes it", err, nt.RunnerID, derr)
		}
		return res, fmt.Errorf("%w; runner %d was deleted again so that no runner is left whose token is stored nowhere", err, nt.RunnerID)
	}
	log.Infof("stored its token in %s", r.VarName())

	// Read back: a concurrent run may have stored its own runner after us, or someone deleted
	// the variable (then no runner may stay whose token is stored nowhere).
	got, err := s.API.GetVariable(ctx, r.Var)
	if gitlab.IsNotFound(err) {
		s.discard(ctx, nt.RunnerID)
		return res, fail.WithCode(fail.CodeFailure, fmt.Errorf("%s was gone right after the token of runner %d was stored in it (someone deleted it meanwhile), so runner %d was deleted again: run runner-bootstrap create again", r.VarName(), nt.RunnerID, nt.RunnerID))
	}
	if err == nil {
		if cur, ok := record.ParseVariable(got.Description); ok && cur.RunnerID != nt.RunnerID {
			if cur.RunnerID > nt.RunnerID {
				s.discard(ctx, nt.RunnerID)
				return res, errSuperseded
			}
			if err := s.store(ctx, r, got, nt, rec); err != nil {
				return res, err
			}
		}
	}
	more, err := s.deleteOrphans(ctx, r, func(id int64) bool { return id < nt.RunnerID })
	res.OrphansDeleted = append(res.OrphansDeleted, more...)
	if err != nil {
		return res, err
	}
	res.RunnerID = nt.RunnerID
	res.TokenExpiresAt = nt.ExpiresAt
	res.Action = ActionCreated
	if v != nil {
		res.Action = ActionReplaced
	}
	return res, nil
}

// store writes the token and its record. A new variable is created masked (and hidden and
// protected as asked); an existing one gets a value-only update, because GitLab rejects any
// change of masked on a hidden variable.
func (s *Service) store(ctx context.Context, r Resolved, v *gitlab.Variable, nt gitlab.NewToken, rec record.Variable) error {
	desc := rec.Description()
	if v == nil {
		hidden := r.Spec.Variable.Hidden && r.Var.Owner != spec.OwnerInstance
		w := gitlab.VariableWrite{
			Value: &nt.Token, Description: &desc, Protected: &r.Spec.Variable.Protected,
			Masked: new(true), Hidden: hidden, Type: &r.Spec.Variable.Type, Raw: new(false),
		}
		err := s.API.CreateVariable(ctx, r.Var, w)
		if err == nil {
			return s.checkScopeKept(ctx, r)
		}
		if !strings.Contains(err.Error(), "has already been taken") {
			return err
		}
		// Someone created it since step 1: a concurrent run of this tool (update it), or a
		// person (never overwrite their variable with a token).
		got, err := s.API.GetVariable(ctx, r.Var)
		if err != nil {
			return err
		}
		if _, ok := record.ParseVariable(got.Description); !ok {
			return notManaged(r.VarName())
		}
		if err := checkVisibility(r, got); err != nil {
			return err
		}
	}
	return s.API.UpdateVariable(ctx, r.Var, gitlab.VariableWrite{Value: &nt.Token, Description: &desc})
}

// checkScopeKept makes sure GitLab stored a group variable under the scope asked for: without
// a Premium licence it silently drops environment_scope on group variables, and the variable
// then lands in scope *, where no later run would look for it.
func (s *Service) checkScopeKept(ctx context.Context, r Resolved) error {
	if r.Var.Owner != spec.OwnerGroup || r.Var.Scope == spec.DefaultScope {
		return nil
	}
	_, err := s.API.GetVariable(ctx, r.Var)
	if err == nil || !gitlab.IsNotFound(err) {
		return err
	}
	dropped := r.Var
	dropped.Scope = spec.DefaultScope
	if derr := s.API.DeleteVariable(ctx, dropped); derr != nil && !gitlab.IsNotFound(derr) {
		return fmt.Errorf("GitLab stored %s under scope * (it drops environment scopes of group variables without a Premium licence), and deleting it failed (%w): delete it by hand", r.VarName(), derr)
	}
	return fail.WithCode(fail.CodeConflict, fmt.Errorf("GitLab ignored the environment scope %q of the group variable %s (scoped group variables need GitLab Premium); use --variable-environment-scope '*' or store the token in a project variable", r.Var.Scope, r.Var.Key))
}

// marked lists the runners, among those pick accepts, whose maintenance note names r's
// variable. Only runners of the spec's type and owner are candidates; the details of each
// candidate are read to see its note.
func (s *Service) marked(ctx context.Context, r Resolved, pick func(int64) bool) ([]int64, error) {
	owner, id := runnerOwner(r.Attrs)
	list, err := s.API.ListOwnerRunners(ctx, owner, id, r.Attrs.Type)
	if err != nil {
		return nil, err
	}
	target := r.Var.Target()
	var out []int64
	for _, sum := range list {
		// Every runner this tool creates for r has r's description; others need no GET.
		if (!r.AnyDescription && sum.Description != r.Attrs.Description) || !pick(sum.ID) {
			continue
		}
		d, err := s.API.GetRunner(ctx, sum.ID)
		if gitlab.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if _, m, ok := record.ParseNote(d.MaintenanceNote); ok && m.Target == target {
			out = append(out, sum.ID)
		}
	}
	return out, nil
}

// deleteOrphans deletes the marked runners for which pick is true.
func (s *Service) deleteOrphans(ctx context.Context, r Resolved, pick func(int64) bool) ([]int64, error) {
	ids, err := s.marked(ctx, r, pick)
	if err != nil {
		return nil, err
	}
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

// newerMarked reports whether a runner newer than id is marked for r's variable.
func (s *Service) newerMarked(ctx context.Context, r Resolved, id int64) (bool, error) {
	ids, err := s.marked(ctx, r, func(other int64) bool { return other > id })
	return len(ids) > 0, err
}

// discard deletes a runner this run created and no longer needs; a failure is only logged
// because the runner is marked and the next run deletes it.
func (s *Service) discard(ctx context.Context, id int64) {
	if err := s.API.DeleteRunner(ctx, id); err != nil && !gitlab.IsNotFound(err) {
		s.Log.WithField("runner_id", id).Warnf("could not delete runner %d (%v); it is marked, so the next run with the same spec (or runner-bootstrap prune) deletes it", id, err)
	}
}
