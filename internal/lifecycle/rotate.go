package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// RotateOptions tune Rotate.
type RotateOptions struct {
	// IfExpiringWithin rotates only when the token expires within this window (0: always).
	IfExpiringWithin time.Duration
	// RunnerToken, when set, authenticates the reset with the runner's current token
	// (POST /runners/reset_authentication_token) instead of the access token's rights.
	RunnerToken *token.Secret
	// RequireSingleManager refuses, before any write, to rotate a token that more than one
	// manager used within ActiveWithin (or whose managers cannot be read).
	RequireSingleManager bool
	// DryRun stops after the reads and checks, before any write: the result's action is
	// ActionWouldRotate, ActionWouldRecreate or ActionSkipped, with the reason.
	DryRun bool
}

// Rotate resets the runner's token and stores the new one in the same variable. GitLab
// invalidates the old token at once, so the steps are ordered to keep the window short and
// recoverable:
//
//  1. read the variable's record and the runner (reads only);
//  2. mark the variable rotation_pending with a description-only update: this proves the
//     variable is writable before anything irreversible happens;
//  3. reset the token;
//  4. store the new token with a value-only update (client retries cover transient errors);
//     if that still fails, the variable stays marked: status reports it and the next rotate or
//     create repairs it.
//
// A runner whose rotation deadline (GitLab EE 18.10+) has passed cannot be reset: it is
// replaced instead (see recreate).
func (s *Service) Rotate(ctx context.Context, r Resolved, o RotateOptions) (Result, error) {
	serr := s.withServer(ctx, &r)
	res := newResult(r, "")
	if serr != nil {
		return res, serr
	}
	v, err := s.readVariableAndServer(ctx, r)
	if gitlab.IsNotFound(err) {
		return res, fail.WithCode(fail.CodeNotFound, fmt.Errorf("%s does not exist: create the runner and store its token first with runner-bootstrap create", r.VarName()))
	}
	if err != nil {
		return res, err
	}
	rec, ok := record.ParseVariable(v.Description)
	if !ok {
		return res, notManaged(r.VarName())
	}
	res.RunnerID = rec.RunnerID
	res.TokenExpiresAt = rec.TokenExpiresAt
	runner, err := s.recordedRunner(ctx, r, rec)
	switch {
	case errors.Is(err, ErrNotCreatedFor):
		return res, err
	case gitlab.IsNotFound(err):
		return res, fail.WithCode(fail.CodeNotFound, fmt.Errorf("runner %d recorded in %s no longer exists: run runner-bootstrap create to replace it", rec.RunnerID, r.VarName()))
	case err != nil && o.RunnerToken == nil:
		return res, err
	case err != nil:
		// The access token may have no rights on the runner: that is what --use-runner-token is for.
		runner = nil
	}
	if runner != nil {
		res.RunnerType = runner.Type
	}

	reason, due := s.rotationDue(r.Server, rec, runner, o.IfExpiringWithin)
	res.Reason = reason
	if !due {
		res.Action = ActionSkipped
		s.Log.Infof("not rotating the token of runner %d: %s", rec.RunnerID, reason)
		return res, nil
	}

	if err := s.checkManagers(ctx, r, runner, o, &res); err != nil {
		return res, err
	}

	if err := s.checkGroupFilter(ctx, r); err != nil {
		return res, err
	}
	if o.DryRun {
		res.Action = ActionWouldRotate
		if runner != nil && deadlinePassed(rec, r.Server.Now(s.Now())) {
			res.Action = ActionWouldRecreate
		}
		if o.RunnerToken != nil {
			// POST /runners/verify records a runner manager: a write a dry run does not make.
			res.Notes = append(res.Notes, fmt.Sprintf("the dry run did not check that the token in $%s belongs to runner %d (GitLab's verify records a runner manager)", r.Var.Key, rec.RunnerID))
		}
		return res, nil
	}
	if runner != nil && deadlinePassed(rec, r.Server.Now(s.Now())) {
		return s.recreate(ctx, r, v, rec, runner, res)
	}
	if o.RunnerToken != nil {
		if err := s.checkRunnerToken(ctx, r, rec, *o.RunnerToken); err != nil {
			return res, err
		}
	}

	for attempt := 1; ; attempt++ {
		nt, storeID, err := s.resetAndStore(ctx, r, v, rec, o)
		if errors.Is(err, errDeadlinePassed) && runner != nil {
			// A deadline this tool did not record (set in the UI, or a record lost).
			return s.recreate(ctx, r, v, rec, runner, res)
		}
		if err != nil {
			return res, err
		}
		res.Action = ActionRotated
		res.TokenExpiresAt = nt.ExpiresAt
		revoked, note, err := s.checkStored(ctx, r, rec.RunnerID, nt.Token, storeID)
		if err != nil {
			return res, err
		}
		if note != "" {
			res.Notes = append(res.Notes, note)
		}
		if !revoked {
			if runner != nil {
				res.OrphansDeleted = s.sweep(ctx, r, runner, &res)
			}
			return res, nil
		}
		if o.RunnerToken != nil || attempt == rotateAttempts {
			return res, s.failRevoked(ctx, r, rec, attempt)
		}
		s.Log.WithField("runner_id", rec.RunnerID).Warnf("the token just stored in %s was revoked by a concurrent reset and no other run has stored a newer one; rotating again (attempt %d of %d)", r.VarName(), attempt+1, rotateAttempts)
		s.Pause(time.Duration(attempt) * 300 * time.Millisecond)
	}
}

// checkManagers reads the runner's managers before a rotation: every manager that used the
// token within ActiveWithin holds the old token, which GitLab revokes at once, so each must be
// redeployed from the variable. More than one is said (a warning and res.Managers), or refused
// with RequireSingleManager, before anything is written.
func (s *Service) checkManagers(ctx context.Context, r Resolved, runner *gitlab.Runner, o RotateOptions, res *Result) error {
	var ms []gitlab.Manager
	unknown := "the runner's managers could not be read: the access token has no rights on the runner"
	if runner != nil {
		var err error
		if ms, unknown, err = s.listManagers(ctx, runner.ID); err != nil {
			return fmt.Errorf("%w; nothing was rotated", err)
		}
	}
	if unknown != "" {
		if o.RequireSingleManager {
			return fail.WithCode(fail.CodeConflict, fmt.Errorf("--require-single-manager cannot be honoured: %s; nothing was rotated", unknown))
		}
		res.Notes = append(res.Notes, unknown)
		return nil
	}
	active := ActiveManagers(ms, s.Now())
	if len(active) <= 1 {
		return nil
	}
	res.Managers = active
	msg := fmt.Sprintf("%d managers used the token of runner %d within the last %s: %s", len(active), runner.ID, "day", DescribeManagers(active))
	if o.RequireSingleManager {
		return fail.WithCode(fail.CodeConflict, fmt.Errorf("%s; --require-single-manager refuses to rotate a shared token (nothing was rotated): give each host its own runner, or rotate without the flag and redeploy every manager from %s", msg, r.VarName()))
	}
	note := msg + "; each keeps the revoked token until it is redeployed from " + r.VarName() + " (then runner-bootstrap status --wait-managers checks that all came back)"
	res.Notes = append(res.Notes, note)
	s.Log.WithField("runner_id", runner.ID).Warn(note)
	return nil
}

// readVariableAndServer reads the variable and, beside it, what the server is (read once per
// client): the managers check needs the version, and it costs no round trip of its own then.
func (s *Service) readVariableAndServer(ctx context.Context, r Resolved) (*gitlab.Variable, error) {
	if sr, ok := s.API.(serverReader); ok {
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { _, _ = sr.Server(ctx) }) // a failure is met again, and judged, where it is used
	}
	return s.API.GetVariable(ctx, r.Var)
}

// errDeadlinePassed marks a reset GitLab refused because the rotation deadline has passed.
var errDeadlinePassed = errors.New("the token's rotation deadline has passed")

// rotateAttempts bounds how often Rotate repairs a stored token that a concurrent reset revoked.
const rotateAttempts = 3

// resetAndStore marks the variable rotation_pending, resets the token and stores the new one
// with a fresh StoreID.
func (s *Service) resetAndStore(ctx context.Context, r Resolved, v *gitlab.Variable, rec record.Variable, o RotateOptions) (gitlab.NewToken, string, error) {
	pending := rec
	pending.RotationPending = true
	if err := s.API.UpdateVariable(ctx, r.Var, gitlab.VariableWrite{Description: new(pending.Description())}); err != nil {
		return gitlab.NewToken{}, "", fmt.Errorf("%w; nothing was rotated", err)
	}
	var nt gitlab.NewToken
	var err error
	if o.RunnerToken != nil {
		nt, err = s.API.ResetRunnerTokenWithToken(ctx, *o.RunnerToken)
	} else {
		nt, err = s.API.ResetRunnerToken(ctx, rec.RunnerID)
	}
	if err != nil && o.RunnerToken != nil && gitlab.StatusCode(err) == http.StatusForbidden {
		// The runner token was valid a moment ago (checked above) and is not now: it was just
		// rotated elsewhere. The stored token is stale; the mark says so and the next create
		// or rotate with an access token repairs it.
		return nt, "", fail.WithCode(fail.CodeConflict, fmt.Errorf("GitLab refused the runner token from $%s (403), so the stored token is stale: run runner-bootstrap rotate without --use-runner-token, with an access token that has rights on runner %d (%s is marked rotation_pending)", r.Var.Key, rec.RunnerID, r.VarName()))
	}
	if err != nil {
		if code := gitlab.StatusCode(err); code >= 400 && code < 500 {
			// GitLab answered and did not reset: the stored token is still good, so the mark
			// would only make status cry wolf and the next create reset a working token.
			if uerr := s.API.UpdateVariable(ctx, r.Var, gitlab.VariableWrite{Description: new(rec.Description())}); uerr != nil {
				return nt, "", fmt.Errorf("%w; the stored token is unchanged, but clearing the rotation_pending mark on %s failed too (%v)", err, r.VarName(), uerr)
			}
			if isDeadlinePassed(err) {
				return nt, "", fmt.Errorf("%w (%v)", errDeadlinePassed, err)
			}
			return nt, "", fmt.Errorf("%w; nothing was rotated and the stored token still works", err)
		}
		return nt, "", fmt.Errorf("%w; GitLab may or may not have reset the token, so %s is marked rotation_pending: status reports it and the next rotate or create finishes the job", err, r.VarName())
	}
	done := record.Variable{RunnerID: rec.RunnerID, TokenExpiresAt: nt.ExpiresAt, TokenSetAt: s.Now(), StoreID: record.NewStoreID()}
	w := gitlab.VariableWrite{Value: &nt.Token, Description: new(done.Description())}
	if !v.Masked && !v.Hidden {
		// Someone unmasked the variable: re-mask it as the token goes in (allowed, not hidden).
		w.Masked, w.Raw = new(true), new(false)
	}
	if err := s.API.UpdateVariable(ctx, r.Var, w); err != nil {
		return nt, "", fmt.Errorf("%w; runner %d's token was reset but the new one could not be stored, so its managers hold a revoked token until the next rotation: run runner-bootstrap rotate again (%s is marked rotation_pending)", err, rec.RunnerID, r.VarName())
	}
	s.Log.WithField("runner_id", rec.RunnerID).Infof("rotated the token of runner %d and stored it in %s", rec.RunnerID, r.VarName())
	return nt, done.StoreID, nil
}

// checkStored makes rotation safe under concurrency. GitLab has no compare-and-swap on
// variables and a hidden value cannot be read back, but the run still holds the token it
// stored: it asks GitLab whether that token is the runner's current one (POST /runners/verify,
// which needs no rights but the token). Valid: done. Revoked (403): a concurrent reset came
// after this run's; the StoreID in the variable's description says who wrote last. If it is
// still this run's, the variable holds a revoked token and the caller rotates again; if
// another run stored since, that run checks its own token in turn. A check that cannot be made
// (no answer, an older GitLab) leaves a note: the token was stored as before.
func (s *Service) checkStored(ctx context.Context, r Resolved, id int64, t token.Secret, storeID string) (revoked bool, note string, err error) {
	vr, ok := s.API.(runnerVerifier)
	if !ok {
		return false, "", nil
	}
	got, err := vr.VerifyRunnerToken(ctx, t, verifySystemID)
	if err == nil {
		s.removeVerifyManager(ctx, vr, t)
		if got != id {
			return false, "", fmt.Errorf("GitLab says the token just stored in %s belongs to runner %d, not runner %d", r.VarName(), got, id)
		}
		return false, "", nil
	}
	if gitlab.StatusCode(err) != http.StatusForbidden {
		s.Log.Warnf("could not check that the stored token is runner %d's current one (%v); if another rotation ran at the same time, runner-bootstrap status shows it", id, err)
		return false, fmt.Sprintf("the stored token could not be checked against GitLab (%v)", err), nil
	}
	cur, err := s.API.GetVariable(ctx, r.Var)
	if err != nil {
		return false, "", fmt.Errorf("the token just stored in %s was revoked by a concurrent reset, and reading the variable back to see whether another run stored a newer one failed (%w): run runner-bootstrap rotate again", r.VarName(), err)
	}
	if crec, ok := record.ParseVariable(cur.Description); ok && crec.StoreID == storeID {
		return true, "", nil
	}
	s.Log.WithField("runner_id", id).Infof("a concurrent rotation stored a newer token in %s after this one; it checks its own", r.VarName())
	return false, "a concurrent rotation stored a newer token after this run's; that run checks its own", nil
}

// failRevoked is the loud end of a rotation whose stored token kept being revoked: the
// variable is marked rotation_pending so that status reports it and the next run repairs it.
func (s *Service) failRevoked(ctx context.Context, r Resolved, rec record.Variable, attempts int) error {
	pending := rec
	pending.RotationPending = true
	mark := ""
	if err := s.API.UpdateVariable(ctx, r.Var, gitlab.VariableWrite{Description: new(pending.Description())}); err != nil {
		mark = fmt.Sprintf(", and marking it rotation_pending failed too (%v)", err)
	}
	return fail.WithCode(fail.CodeFailure, fmt.Errorf("the token stored in %s was revoked by a concurrent reset of runner %d after %d attempt(s), so its managers would get a dead token%s: make sure only one job rotates this variable at a time (one resource_group per variable) and run runner-bootstrap rotate again", r.VarName(), rec.RunnerID, attempts, mark))
}

// StaleReason says why the stored token is known to be dead, if it is.
func StaleReason(rec record.Variable, runner *gitlab.Runner) (string, bool) {
	if rec.RotationPending {
		return "a previous rotation did not finish, so the stored token is stale", true
	}
	// The record keeps whole seconds; GitLab reports milliseconds.
	if runner != nil && runner.TokenExpiresAt != nil && (rec.TokenExpiresAt == nil || !runner.TokenExpiresAt.Truncate(time.Second).Equal(rec.TokenExpiresAt.Truncate(time.Second))) {
		return "the token was rotated outside runner-bootstrap (GitLab reports another expiry), so the stored token is stale", true
	}
	return "", false
}

// rotationDue decides whether to rotate and says why, in words for the log and JSON.
func (s *Service) rotationDue(srv gitlab.Server, rec record.Variable, runner *gitlab.Runner, window time.Duration) (string, bool) {
	if reason, stale := StaleReason(rec, runner); stale {
		return reason, true
	}
	if dl := rec.RotationDeadline; dl != nil {
		// Past the deadline GitLab refuses a reset, so a rotation inside the window is due
		// before it, and one after it replaces the runner.
		switch left := dl.Sub(srv.Now(s.Now())); {
		case left <= 0:
			return fmt.Sprintf("the token's rotation deadline passed at %s, so the runner is replaced", dl.UTC().Format(time.RFC3339)), true
		case window > 0 && left <= window:
			return fmt.Sprintf("the token's rotation deadline is in %s, within %s", duration.Duration(roundDuration(left)), duration.Duration(window)), true
		}
	}
	if window <= 0 {
		return "rotation requested", true
	}
	exp := rec.TokenExpiresAt
	if exp == nil {
		return "the token never expires", false
	}
	left := exp.Sub(s.Now())
	if left <= 0 {
		return fmt.Sprintf("the token expired at %s", exp.UTC().Format(time.RFC3339)), true
	}
	if left <= window {
		return fmt.Sprintf("the token expires in %s, within %s", duration.Duration(roundDuration(left)), duration.Duration(window)), true
	}
	return fmt.Sprintf("the token expires in %s, outside the %s window", duration.Duration(roundDuration(left)), duration.Duration(window)), false
}

func roundDuration(d time.Duration) time.Duration {
	if d > time.Hour {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

// runnerVerifier is implemented by the GitLab client: POST /runners/verify.
type runnerVerifier interface {
	VerifyRunnerToken(ctx context.Context, t token.Secret, systemID string) (int64, error)
	DeleteRunnerManager(ctx context.Context, t token.Secret, systemID string) error
}

// removeVerifyManager removes the manager that verify recorded for the check, so status and the
// UI show only real hosts.
func (s *Service) removeVerifyManager(ctx context.Context, vr runnerVerifier, t token.Secret) {
	if err := vr.DeleteRunnerManager(ctx, t, verifySystemID); err != nil {
		s.Log.Warnf("could not remove the manager %s that verifying the token created (%v); GitLab removes it once it is stale", verifySystemID, err)
	}
}

// verifySystemID is the manager GitLab records for the check (GitLab removes managers that
// stop contacting it; the tool removes it at once).
const verifySystemID = record.VerifySystemID

// checkRunnerToken makes sure the runner token from the job's environment belongs to the
// runner the variable records: the job may have received a same-named variable of another
// project, group or environment, and resetting that runner would break both.
func (s *Service) checkRunnerToken(ctx context.Context, r Resolved, rec record.Variable, t token.Secret) error {
	vr, ok := s.API.(runnerVerifier)
	if !ok {
		return nil
	}
	id, err := vr.VerifyRunnerToken(ctx, t, verifySystemID)
	if gitlab.StatusCode(err) == http.StatusForbidden {
		return fail.WithCode(fail.CodeConflict, fmt.Errorf("the runner token in $%s is not valid any more (GitLab answered 403 to verify), so the stored token is stale: run runner-bootstrap rotate without --use-runner-token, with an access token that has rights on runner %d", r.Var.Key, rec.RunnerID))
	}
	if err != nil {
		return err
	}
	s.removeVerifyManager(ctx, vr, t)
	if id != rec.RunnerID {
		return fail.WithCode(fail.CodeConflict, fmt.Errorf("the runner token in $%s belongs to runner %d, but %s records runner %d: the job received another variable of that name (check its project, group and environment scope); nothing was rotated", r.Var.Key, id, r.VarName(), rec.RunnerID))
	}
	return nil
}

// deadlinePassed reports whether the recorded rotation deadline has passed.
func deadlinePassed(rec record.Variable, now time.Time) bool {
	return rec.RotationDeadline != nil && !rec.RotationDeadline.After(now)
}

// isDeadlinePassed recognises GitLab's refusal to reset a token after its rotation deadline.
func isDeadlinePassed(err error) bool {
	return gitlab.StatusCode(err) == http.StatusForbidden && strings.Contains(strings.ToLower(err.Error()), "rotation deadline")
}

// recreate replaces a runner whose token can no longer be reset: a new runner with the same
// attributes (and the same expiry intervals, from the record), its token stored in the same
// variable, then the old runner deleted. It is create's own path (createAndStore), so it is
// crash-safe the same way: the new runner is marked for the variable before its token exists
// anywhere, and until the variable names it the old runner keeps working; once the variable
// names the new one, the old one is a marked orphan that the next create or prune deletes if
// this run dies before it does.
func (s *Service) recreate(ctx context.Context, r Resolved, v *gitlab.Variable, rec record.Variable, old *gitlab.Runner, res Result) (Result, error) {
	r.Attrs = runnerAttrs(old)
	r.Spec.Runner = spec.Runner{Type: r.Attrs.Type, Description: old.Description, TokenExpiresIn: rec.ExpiresIn, TokenRotationDeadlineIn: rec.RotationDeadlineIn}
	if rec.ExpiresIn > 0 && !r.Server.Has(gitlab.CapTokenExpiryAtCreate) {
		r.Spec.Runner.TokenExpiresIn, r.Spec.Runner.TokenRotationDeadlineIn = 0, 0
	}
	r.OwnerPath = fmt.Sprintf("%s %d", runnerOwnerKind(r.Attrs), max(r.Attrs.ProjectID, r.Attrs.GroupID))
	s.Log.WithField("runner_id", old.ID).Infof("the rotation deadline of runner %d has passed, so GitLab cannot reset its token: replacing it with a new runner", old.ID)
	out, err := s.createAndStore(ctx, r, v, res, old.ID)
	out.PreviousRunnerID = old.ID
	if err != nil {
		return out, err
	}
	if err := s.API.DeleteRunner(ctx, old.ID); err != nil && !gitlab.IsNotFound(err) {
		return out, fmt.Errorf("%w; the new runner %d holds the token now, but deleting the old runner %d failed: it is marked, so the next create (or runner-bootstrap prune) deletes it", err, out.RunnerID, old.ID)
	}
	s.Log.WithField("runner_id", old.ID).Infof("deleted the old runner %d", old.ID)
	out.Action = ActionRecreated
	out.Reason = res.Reason
	return out, nil
}

func runnerOwnerKind(a gitlab.RunnerAttrs) spec.OwnerKind {
	k, _ := runnerOwner(a)
	return k
}

// sweep deletes, best effort, runners marked for r's variable that it does not name: what a
// create or a replacing rotate killed midway leaves behind (the same rule as create's). A
// failure only adds a note: the rotation itself succeeded.
func (s *Service) sweep(ctx context.Context, r Resolved, current *gitlab.Runner, res *Result) []int64 {
	r.Attrs = runnerAttrs(current)
	deleted, err := s.deleteOrphans(ctx, r, func(id int64) bool { return id != current.ID })
	if err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("could not look for leftover runners marked for the variable (%v); the next create or runner-bootstrap prune deletes them", err))
	}
	return deleted
}

// runnerAttrs are the attributes of an existing runner, as a create of its twin would send them.
func runnerAttrs(old *gitlab.Runner) gitlab.RunnerAttrs {
	userNote, _, _ := record.ParseNote(old.MaintenanceNote)
	a := gitlab.RunnerAttrs{
		Type: spec.RunnerType(old.Type), Description: old.Description, TagList: old.TagList, RunUntagged: old.RunUntagged,
		Locked: old.Locked, AccessLevel: old.AccessLevel, MaximumTimeout: old.MaximumTimeout, Paused: old.Paused, MaintenanceNote: userNote,
	}
	if len(old.ProjectIDs) > 0 {
		a.ProjectID = old.ProjectIDs[0]
	}
	if len(old.GroupIDs) > 0 {
		a.GroupID = old.GroupIDs[0]
	}
	return a
}
