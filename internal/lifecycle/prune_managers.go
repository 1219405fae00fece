package lifecycle

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// DefaultManagerAge is prune --managers' --older-than default: GitLab itself counts a manager
// as stale after 7 days without contact.
const DefaultManagerAge = StaleAfter

// ManagerPruneItem is one manager prune --managers removed or would remove.
type ManagerPruneItem struct {
	RunnerID    int64      `json:"runner_id"`
	SystemID    string     `json:"system_id"`
	Version     string     `json:"version,omitempty"`
	ContactedAt *time.Time `json:"contacted_at"`
	Reason      string     `json:"reason"`
	Deleted     bool       `json:"deleted"`
}

// PruneManagers removes the managers of r's runner that have not contacted GitLab for
// olderThan (never contacted: created that long ago). GitLab's only route for it is
// DELETE /runners/managers with the runner's token and the system id (what gitlab-runner
// unregister sends; lib/api/ci/runners.rb has no route for an access token), and a hidden
// variable's value cannot be read through the API, so t is the variable's value as a job that
// receives the variable sees it. The runner is reached only through its marker, and t must be
// its current token (POST /runners/verify) before anything is removed.
func (s *Service) PruneManagers(ctx context.Context, r Resolved, t token.Secret, olderThan time.Duration, dryRun bool) ([]ManagerPruneItem, error) {
	items := []ManagerPruneItem{}
	v, err := s.API.GetVariable(ctx, r.Var)
	if gitlab.IsNotFound(err) {
		return items, fail.WithCode(fail.CodeNotFound, fmt.Errorf("%s does not exist: prune --managers works on a runner whose token runner-bootstrap stored", r.VarName()))
	}
	if err != nil {
		return items, err
	}
	rec, ok := record.ParseVariable(v.Description)
	if !ok {
		return items, notManaged(r.VarName())
	}
	runner, err := s.recordedRunner(ctx, r, rec)
	if err != nil {
		return items, err
	}
	vr, ok := s.API.(runnerVerifier)
	if !ok {
		return items, fmt.Errorf("this GitLab client cannot remove managers")
	}
	id, err := vr.VerifyRunnerToken(ctx, t, verifySystemID)
	if gitlab.StatusCode(err) == http.StatusForbidden {
		return items, fail.WithCode(fail.CodeConflict, fmt.Errorf("the runner token in $%s is not valid any more (GitLab answered 403 to verify), and GitLab removes managers only with the runner's current token: run runner-bootstrap rotate first", r.Var.Key))
	}
	if err != nil {
		return items, err
	}
	s.removeVerifyManager(ctx, vr, t)
	if id != runner.ID {
		return items, fail.WithCode(fail.CodeConflict, fmt.Errorf("the runner token in $%s belongs to runner %d, but %s records runner %d: the job received another variable of that name; nothing was removed", r.Var.Key, id, r.VarName(), runner.ID))
	}
	ms, unknown, err := s.listManagers(ctx, runner.ID)
	if err != nil {
		return items, err
	}
	if unknown != "" {
		return items, fail.WithCode(fail.CodeConflict, fmt.Errorf("prune --managers cannot tell which managers are stale: %s", unknown))
	}
	now := s.Now()
	for _, m := range ms {
		if m.SystemID == verifySystemID {
			continue
		}
		last, what := m.ContactedAt, "last contacted"
		if last == nil {
			last, what = m.CreatedAt, "never contacted, created"
		}
		if last == nil || now.Sub(*last) <= olderThan {
			continue
		}
		it := ManagerPruneItem{RunnerID: runner.ID, SystemID: m.SystemID, Version: m.Version, ContactedAt: m.ContactedAt,
			Reason: fmt.Sprintf("%s %s ago, beyond --older-than %s", what, duration.Duration(roundDuration(now.Sub(*last))), duration.Duration(olderThan))}
		if !dryRun {
			if err := vr.DeleteRunnerManager(ctx, t, m.SystemID); err != nil && !gitlab.IsNotFound(err) {
				return items, err
			}
			it.Deleted = true
			s.Log.WithField("runner_id", runner.ID).Infof("removed manager %s of runner %d: %s", m.SystemID, runner.ID, it.Reason)
		}
		items = append(items, it)
	}
	return items, nil
}
