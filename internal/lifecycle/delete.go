package lifecycle

import (
	"context"
	"fmt"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
)

// Delete removes the runner recorded in the variable, any runner marked for the variable, and
// the variable. Deleting what is already gone succeeds with action "absent".
func (s *Service) Delete(ctx context.Context, r Resolved) (Result, error) {
	res := s.result(r, ActionAbsent)
	v, err := s.API.GetVariable(ctx, r.Var)
	if err != nil && !gitlab.IsNotFound(err) {
		return res, err
	}
	if v != nil {
		rec, ok := record.ParseVariable(v.Description)
		if !ok {
			return res, notManaged(r.Var)
		}
		res.RunnerID = rec.RunnerID
		switch err := s.API.DeleteRunner(ctx, rec.RunnerID); {
		case err == nil:
			s.Log.WithField("runner_id", rec.RunnerID).Infof("deleted runner %d", rec.RunnerID)
			res.Action = ActionDeleted
		case gitlab.IsNotFound(err):
			res.Notes = append(res.Notes, fmt.Sprintf("runner %d was already gone", rec.RunnerID))
		default:
			return res, err
		}
	}
	orphans, err := s.deleteOrphans(ctx, r, func(int64) bool { return true })
	res.OrphansDeleted = orphans
	if err != nil {
		return res, err
	}
	if len(orphans) > 0 {
		res.Action = ActionDeleted
	}
	if v != nil {
		if err := s.API.DeleteVariable(ctx, r.Var); err != nil && !gitlab.IsNotFound(err) {
			return res, err
		}
		s.Log.Infof("deleted %s", r.Var)
		res.Action = ActionDeleted
	}
	if res.Action == ActionAbsent {
		s.Log.Infof("nothing to delete: %s does not exist and no runner is marked for it", r.Var)
	}
	return res, nil
}
