package lifecycle

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// ActionAdopted is adopt's Action when it took the runner over (or, with DryRun, would).
const ActionAdopted = "adopted"

// AdoptResult is what adopt did, for text and JSON output. It never holds a token.
type AdoptResult struct {
	Action           string     `json:"action"`
	DryRun           bool       `json:"dry_run,omitempty"`
	RunnerID         int64      `json:"runner_id"`
	RunnerType       string     `json:"runner_type,omitempty"`
	VariableKey      string     `json:"variable_key"`
	VariableOwner    string     `json:"variable_owner"`
	VariableOwnerID  int64      `json:"variable_owner_id,omitempty"`
	EnvironmentScope string     `json:"environment_scope,omitempty"`
	TokenExpiresAt   *time.Time `json:"token_expires_at"`
	// Managers are those that used the token within the last day: each stops working at the
	// reset until it is redeployed from the variable.
	Managers []gitlab.Manager `json:"managers"`
	// ManagersUnknown says why the managers could not be listed (GitLab before 17.1).
	ManagersUnknown string   `json:"managers_unknown,omitempty"`
	Notes           []string `json:"notes,omitempty"`
}

// AdoptSpec is the spec adopt resolves for runner id: the owner comes from the runner itself
// (its only project, or its group), the variable from the flags in v (whose owner defaults to
// the runner's). It reads the runner only.
func (s *Service) AdoptSpec(ctx context.Context, id int64, v spec.Variable) (spec.Spec, *gitlab.Runner, error) {
	sp := spec.New()
	sp.Variable = v
	runner, err := s.API.GetRunner(ctx, id)
	if gitlab.IsNotFound(err) {
		return sp, nil, fail.WithCode(fail.CodeNotFound, fmt.Errorf("runner %d does not exist (or the access token cannot see it): check --runner-id", id))
	}
	if err != nil {
		return sp, nil, err
	}
	sp.Runner.Type = spec.RunnerType(runner.Type)
	switch sp.Runner.Type {
	case spec.ProjectType:
		if len(runner.ProjectIDs) != 1 {
			return sp, nil, fail.WithCode(fail.CodeConflict, fmt.Errorf("runner %d is a project runner enabled in %d projects, so no one project owns it: adopt takes over runners with one owner only (disable it in the other projects first); nothing was changed", id, len(runner.ProjectIDs)))
		}
		sp.Runner.ProjectRef = strconv.FormatInt(runner.ProjectIDs[0], 10)
	case spec.GroupType:
		if len(runner.GroupIDs) == 0 {
			return sp, nil, fail.WithCode(fail.CodeConflict, fmt.Errorf("GitLab names no group for group runner %d; nothing was changed", id))
		}
		sp.Runner.GroupRef = strconv.FormatInt(runner.GroupIDs[0], 10)
	case spec.InstanceType:
		if v.OwnerRef == "" && v.Owner != spec.OwnerInstance {
			return sp, nil, fail.Usagef("runner %d is an instance runner, which has no project or group to hold its variable: name one with --variable-project, --variable-group or --variable-instance", id)
		}
	default:
		return sp, nil, fail.WithCode(fail.CodeConflict, fmt.Errorf("runner %d has the runner type %q, which adopt does not know; nothing was changed", id, runner.Type))
	}
	sp.Runner.Description = runner.Description
	return sp, runner, nil
}

// Adopt takes over a runner made in the UI (or by hand): it resets the token, marks the runner
// for r's variable and stores the new token there, as create would have. Order, and why a kill
// at any point converges on the next run without losing the runner or leaving a dead token:
//
//  1. read the runner and the variable (reads only); refuse a runner marked for another
//     variable, a variable this tool did not write, or one that records another runner;
//  2. list the managers: each that used the token in the last day stops working at the reset
//     until it is redeployed from the variable (DryRun stops here);
//  3. write a pending adoption line (record.AdoptMarker) into the maintenance note: it proves
//     the runner is writable before anything irreversible, and tells the next run an adoption
//     of this runner for this variable is under way (it is not the create marker, so no create
//     for the variable ever deletes the runner as an orphan);
//  4. reset the token;
//  5. store it with the record (runner id, expiry): a failed store leaves the pending line,
//     so the next run resets and stores again (the token from the failed run is dead anyway);
//  6. replace the pending line with the tool's marker: from now on the runner is managed
//     (rotate, status, delete). A failure here leaves a stored token and the pending line; the
//     next run sees the variable recording the runner and only writes the marker.
//
// A second run finds the marker and the record and writes nothing.
func (s *Service) Adopt(ctx context.Context, r Resolved, runner *gitlab.Runner, dryRun bool) (AdoptResult, error) {
	res := AdoptResult{
		RunnerID: runner.ID, RunnerType: runner.Type, VariableKey: r.Var.Key, VariableOwner: string(r.Var.Owner),
		VariableOwnerID: r.Var.OwnerID, EnvironmentScope: r.Var.Scope, Managers: []gitlab.Manager{}, DryRun: dryRun,
	}
	owner, ownerID := runnerOwner(r.Attrs)
	if !OwnedBy(runner, owner, ownerID, r.Attrs.Type) {
		return res, fail.WithCode(fail.CodeConflict, fmt.Errorf("runner %d is a %s that %s does not own; nothing was changed", runner.ID, runner.Type, r.OwnerPath))
	}
	target := r.Var.Target()
	userNote, m, marked := record.ParseNote(runner.MaintenanceNote)
	if marked && m.Target != target {
		return res, fail.WithCode(fail.CodeConflict, fmt.Errorf("runner %d is already managed by runner-bootstrap for another variable (its marker names %s): adopt it for that variable, or delete that variable with runner-bootstrap delete first; nothing was changed", runner.ID, m.Target))
	}
	pendingNote, pendingTarget, pending := record.ParseAdopt(userNote)
	if pending && pendingTarget != target {
		return res, fail.WithCode(fail.CodeConflict, fmt.Errorf("runner %d is being adopted for another variable (an unfinished adopt for %s): run that adopt again, or remove the [runner-bootstrap-adopt] line from the runner's maintenance note; nothing was changed", runner.ID, pendingTarget))
	}
	if pending {
		userNote = pendingNote
	}

	v, err := s.API.GetVariable(ctx, r.Var)
	if err != nil && !gitlab.IsNotFound(err) {
		return res, err
	}
	var rec record.Variable
	recorded := false
	if err == nil {
		var ok bool
		if rec, ok = record.ParseVariable(v.Description); !ok {
			return res, notManaged(r.VarName())
		}
		if rec.RunnerID != runner.ID {
			return res, fail.WithCode(fail.CodeConflict, fmt.Errorf("%s already holds the token of runner %d: adopt runner %d into another --variable-key, or delete that runner and variable with runner-bootstrap delete first; nothing was changed", r.VarName(), rec.RunnerID, runner.ID))
		}
		if err := checkVisibility(r, v); err != nil {
			return res, err
		}
		recorded = !rec.RotationPending
		res.TokenExpiresAt = rec.TokenExpiresAt
	} else {
		v = nil
	}

	if marked && recorded {
		res.Action = ActionUnchanged
		return res, nil
	}
	if recorded && pending {
		// A run stored the token and died before marking: the token is current, so only the
		// marker is missing. The pending line is what says so (the runner's editors wrote it,
		// through this tool); a description alone, which any Maintainer of the variable's
		// project can write, never spares the reset.
		if dryRun {
			res.Action = ActionAdopted
			res.Notes = append(res.Notes, "a previous adopt stored the token; only the runner's marker is missing")
			return res, nil
		}
		if err := s.markAdopted(ctx, runner, userNote, target); err != nil {
			return res, err
		}
		res.Action = ActionAdopted
		return res, nil
	}

	ms, unknown, err := s.listManagers(ctx, runner.ID)
	if err != nil {
		return res, fmt.Errorf("%w; nothing was changed", err)
	}
	res.ManagersUnknown = unknown
	if ms != nil {
		res.Managers = ActiveManagers(ms, s.Now())
	}
	if len(res.Managers) > 0 {
		s.Log.WithField("runner_id", runner.ID).Warnf("%s use the current token of runner %d and stop working at the reset until they are redeployed from %s: %s", plural(len(res.Managers), "manager"), runner.ID, r.VarName(), DescribeManagers(res.Managers))
	}
	res.Action = ActionAdopted
	if dryRun {
		return res, nil
	}

	attrs := attrsOf(runner)
	attrs.MaintenanceNote = composeAdoptNote(userNote, record.AdoptLine(target, s.Now()))
	if err := s.API.UpdateRunner(ctx, runner.ID, attrs); err != nil {
		return res, fmt.Errorf("%w; nothing was reset, so the current token still works", err)
	}
	nt, err := s.API.ResetRunnerToken(ctx, runner.ID)
	if err != nil {
		return res, fmt.Errorf("%w; GitLab may or may not have reset the token: run runner-bootstrap adopt again (the runner is marked as being adopted for %s)", err, r.VarName())
	}
	res.TokenExpiresAt = nt.ExpiresAt
	newRec := record.Variable{RunnerID: runner.ID, TokenExpiresAt: nt.ExpiresAt, TokenSetAt: s.Now()}
	if _, err := s.store(ctx, r, v, nt, newRec); err != nil {
		stored := false
		if gitlab.IsAmbiguous(err) {
			// No answer: decide from a read whether the write happened.
			if got, rerr := s.API.GetVariable(ctx, r.Var); rerr == nil {
				cur, ok := record.ParseVariable(got.Description)
				stored = ok && cur.RunnerID == runner.ID && cur.TokenSetAt.Equal(newRec.TokenSetAt.Truncate(time.Second))
			}
		}
		if !stored {
			return res, fmt.Errorf("%w; runner %d's token was reset but the new one could not be stored, so its managers hold a dead token: run runner-bootstrap adopt again, which resets and stores it (the runner is marked as being adopted for %s)", err, runner.ID, r.VarName())
		}
	}
	s.Log.WithField("runner_id", runner.ID).Infof("reset the token of runner %d and stored it in %s", runner.ID, r.VarName())
	if err := s.markAdopted(ctx, runner, userNote, target); err != nil {
		return res, err
	}
	return res, nil
}

// markAdopted replaces the pending adoption line with the tool's marker.
func (s *Service) markAdopted(ctx context.Context, runner *gitlab.Runner, userNote, target string) error {
	attrs := attrsOf(runner)
	attrs.MaintenanceNote = record.ComposeNote(userNote, record.Runner{Target: target, CreatedAt: s.Now()})
	if err := s.API.UpdateRunner(ctx, runner.ID, attrs); err != nil {
		return fmt.Errorf("%w; the new token is stored, but runner %d is not marked as managed yet: run runner-bootstrap adopt again to mark it", err, runner.ID)
	}
	s.Log.WithField("runner_id", runner.ID).Infof("marked runner %d as managed by runner-bootstrap", runner.ID)
	return nil
}

// attrsOf is the runner's own attributes, so that a note-only update changes nothing else.
func attrsOf(d *gitlab.Runner) gitlab.RunnerAttrs {
	return gitlab.RunnerAttrs{
		Type: spec.RunnerType(d.Type), Description: d.Description, TagList: d.TagList, RunUntagged: d.RunUntagged,
		Locked: d.Locked, AccessLevel: d.AccessLevel, MaximumTimeout: d.MaximumTimeout, Paused: d.Paused,
		MaintenanceNote: d.MaintenanceNote,
	}
}

func composeAdoptNote(userNote, line string) string {
	if userNote == "" {
		return line
	}
	return userNote + "\n" + line
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
