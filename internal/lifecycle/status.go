package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// Health values reported by Status.
const (
	HealthOK              = "healthy"
	HealthExpiring        = "expiring"
	HealthExpired         = "expired"
	HealthStale           = "stale_token"
	HealthRunnerMissing   = "runner_missing"
	HealthVariableMissing = "variable_missing"
	// HealthForeignRunner: the variable's description names a runner that was not created
	// for it (see recordedRunner); status reads nothing more about that runner.
	HealthForeignRunner = "not_created_for_variable"
	// HealthUnmanaged: the variable exists but runner-bootstrap did not write it.
	HealthUnmanaged = "unmanaged"
	// HealthNeverContacted is a warning, not a failure: no manager has used the runner's
	// token yet (normal right after create, until the managers are deployed).
	HealthNeverContacted = "never_contacted"
	// HealthManagersNotBack (status --wait-managers, exit 1): a manager that used the token
	// before the last rotation has not contacted GitLab since.
	HealthManagersNotBack = "managers_not_back"
)

// StaleAfter is GitLab's rule: a runner that has not contacted it for this long (or, never
// contacted, was created this long ago) is reported as stale.
const StaleAfter = 7 * 24 * time.Hour

// Report is what status prints.
type Report struct {
	Health      string           `json:"health"`
	Message     string           `json:"message"`
	RunnerID    int64            `json:"runner_id,omitempty"`
	RunnerType  string           `json:"runner_type,omitempty"`
	Description string           `json:"description,omitempty"`
	Status      string           `json:"status,omitempty"`
	Paused      bool             `json:"paused"`
	ContactedAt *time.Time       `json:"contacted_at,omitempty"`
	Managers    []gitlab.Manager `json:"managers"`
	// ManagersUnknown says why the managers could not be listed (GitLab before 17.1).
	ManagersUnknown string `json:"managers_unknown,omitempty"`
	// WaitManagers is set by status --wait-managers.
	WaitManagers     *ManagerWait `json:"wait_managers,omitempty"`
	TokenExpiresAt   *time.Time   `json:"token_expires_at"`
	TokenExpiresIn   string       `json:"token_expires_in,omitempty"`
	TokenSetAt       *time.Time   `json:"token_set_at,omitempty"`
	VariableKey      string       `json:"variable_key"`
	VariableOwner    string       `json:"variable_owner"`
	VariableOwnerID  int64        `json:"variable_owner_id,omitempty"`
	EnvironmentScope string       `json:"environment_scope,omitempty"`
	ExitCode         int          `json:"exit_code"`
	Gitlab           *gitlab.Info `json:"gitlab,omitempty"`
	Notes            []string     `json:"notes,omitempty"`
}

// Status reads the variable, its runner and the runner's managers. Only reads. The report's
// ExitCode is 0 when healthy, fail.CodeExpiring when the token expires within warnWithin (or
// has expired, or is known to be stale), fail.CodeRunnerGone and fail.CodeVariableMissing.
func (s *Service) Status(ctx context.Context, r Resolved, warnWithin time.Duration) (Report, error) {
	serr := s.withServer(ctx, &r)
	rep := Report{VariableKey: r.Var.Key, VariableOwner: string(r.Var.Owner), VariableOwnerID: r.Var.OwnerID, EnvironmentScope: r.Var.Scope, Managers: []gitlab.Manager{}, Gitlab: r.Server.Info()}
	if serr != nil {
		return rep, serr
	}
	v, err := s.API.GetVariable(ctx, r.Var)
	if gitlab.IsNotFound(err) {
		return s.finish(rep, HealthVariableMissing, fail.CodeVariableMissing, fmt.Sprintf("%s does not exist", r.VarName())), nil
	}
	if err != nil {
		return rep, err
	}
	rec, ok := record.ParseVariable(v.Description)
	if !ok {
		return s.finish(rep, HealthUnmanaged, fail.CodeVariableMissing, fmt.Sprintf("%s exists but was not written by runner-bootstrap (its description has no runner record), so no runner is known for it", r.VarName())), nil
	}
	rep.RunnerID = rec.RunnerID
	rep.TokenExpiresAt = rec.TokenExpiresAt
	if !rec.TokenSetAt.IsZero() {
		rep.TokenSetAt = &rec.TokenSetAt
	}
	runner, err := s.recordedRunner(ctx, r, rec)
	if errors.Is(err, ErrNotCreatedFor) {
		return s.finish(rep, HealthForeignRunner, fail.CodeVariableMissing, err.Error()), nil
	}
	if gitlab.IsNotFound(err) {
		return s.finish(rep, HealthRunnerMissing, fail.CodeRunnerGone, fmt.Sprintf("runner %d recorded in %s no longer exists; runner-bootstrap create replaces it", rec.RunnerID, r.VarName())), nil
	}
	if err != nil {
		return rep, err
	}
	rep.RunnerType, rep.Description, rep.Status, rep.Paused, rep.ContactedAt = runner.Type, runner.Description, runner.Status, runner.Paused, runner.ContactedAt
	if rep.Managers, rep.ManagersUnknown, err = s.listManagers(ctx, runner.ID); err != nil {
		return rep, err
	}
	if rep.Managers == nil {
		rep.Managers = []gitlab.Manager{}
	}
	if runner.TokenExpiresAt != nil {
		rep.TokenExpiresAt = runner.TokenExpiresAt
	}
	if reason, stale := StaleReason(rec, runner); stale {
		return s.finish(rep, HealthStale, fail.CodeExpiring, reason+"; runner-bootstrap rotate fixes it"), nil
	}
	if exp := rep.TokenExpiresAt; exp != nil {
		left := exp.Sub(s.Now())
		rep.TokenExpiresIn = roundDuration(left).String()
		switch {
		case left <= 0:
			return s.finish(rep, HealthExpired, fail.CodeExpiring, fmt.Sprintf("the token of runner %d expired at %s; runner-bootstrap rotate issues a new one", runner.ID, exp.UTC().Format(time.RFC3339))), nil
		case warnWithin > 0 && left <= warnWithin:
			return s.finish(rep, HealthExpiring, fail.CodeExpiring, fmt.Sprintf("the token of runner %d expires in %s, within --warn-within %s", runner.ID, duration.Duration(roundDuration(left)), duration.Duration(warnWithin))), nil
		}
	}
	if runner.Status == "never_contacted" {
		msg := fmt.Sprintf("runner %d has never contacted GitLab: no runner manager uses its token yet (deploy one from %s); GitLab reports a runner as stale when it has not contacted GitLab within %d days of its creation, and may then delete it where stale runner cleanup is on", runner.ID, r.VarName(), StaleAfter/(24*time.Hour))
		return s.finish(rep, HealthNeverContacted, fail.CodeOK, msg), nil
	}
	if rep.ManagersUnknown == "" && len(rep.Managers) == 0 {
		// GitLab records a manager for every host that uses the token and drops it after
		// StaleAfter without contact. The runner's own contacted_at is no proof of a host: the
		// tool's token checks (POST /runners/verify after a rotation) count as a contact too.
		msg := fmt.Sprintf("no runner manager has used runner %d's token within the last %d days (GitLab shows the runner %s, but runner-bootstrap's own token checks count as a contact): deploy one from %s; GitLab reports a runner as stale when no host contacts it for %d days, and may then delete it where stale runner cleanup is on", runner.ID, StaleAfter/(24*time.Hour), runner.Status, r.VarName(), StaleAfter/(24*time.Hour))
		return s.finish(rep, HealthNeverContacted, fail.CodeOK, msg), nil
	}
	return s.finish(rep, HealthOK, fail.CodeOK, fmt.Sprintf("runner %d is %s and its token is stored in %s", runner.ID, runner.Status, r.VarName())), nil
}

func (s *Service) finish(rep Report, health string, code int, msg string) Report {
	rep.Health, rep.ExitCode, rep.Message = health, code, msg
	return rep
}

// CheckStoredToken adds to a status report what only the token itself can tell: t is the
// variable's value as a job that receives the variable sees it (status cannot read a hidden
// value through the API). GitLab is asked whether t is the runner's current token (POST
// /runners/verify, which GitLab counts as a contact of the runner; the manager entry it records
// is removed again). A revoked token, or one of another runner, makes the report stale (exit
// 10). Reports already stale, or without a runner of the variable's own, are returned unchanged.
func (s *Service) CheckStoredToken(ctx context.Context, r Resolved, rep Report, t token.Secret) (Report, error) {
	vr, ok := s.API.(runnerVerifier)
	if !ok || rep.RunnerID == 0 || rep.Health == HealthStale || rep.ExitCode == fail.CodeRunnerGone || rep.ExitCode == fail.CodeVariableMissing {
		return rep, nil
	}
	id, err := vr.VerifyRunnerToken(ctx, t, verifySystemID)
	if gitlab.StatusCode(err) == http.StatusForbidden {
		return s.finish(rep, HealthStale, fail.CodeExpiring, fmt.Sprintf("the token in $%s is not valid any more (GitLab answered 403 to verify), so %s holds a revoked token; runner-bootstrap rotate fixes it", r.Var.Key, r.VarName())), nil
	}
	if err != nil {
		return rep, err
	}
	s.removeVerifyManager(ctx, vr, t)
	if id != rep.RunnerID {
		return s.finish(rep, HealthStale, fail.CodeExpiring, fmt.Sprintf("the token in $%s belongs to runner %d, not to runner %d that %s records: the job received another variable of that name, or the value was replaced", r.Var.Key, id, rep.RunnerID, r.VarName())), nil
	}
	return rep, nil
}
