package lifecycle

import (
	"context"
	"fmt"
	"net/http"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// Delete removes the runner recorded in the variable, any runner marked for the variable, and
// the variable. Deleting what is already gone succeeds with action "absent". Everything is
// looked up before anything is deleted, so a refused look-up changes nothing.
func (s *Service) Delete(ctx context.Context, r Resolved) (Result, error) {
	serr := s.withServer(ctx, &r)
	res := newResult(r, ActionAbsent)
	if serr != nil {
		return res, serr
	}
	v, err := s.API.GetVariable(ctx, r.Var)
	if err != nil && !gitlab.IsNotFound(err) {
		return res, err
	}
	var recorded *gitlab.Runner
	if v != nil {
		rec, ok := record.ParseVariable(v.Description)
		if !ok {
			return res, notManaged(r.VarName())
		}
		res.RunnerID = rec.RunnerID
		recorded, err = s.recordedRunner(ctx, r, rec)
		switch {
		case gitlab.IsNotFound(err):
			recorded = nil
			res.Notes = append(res.Notes, fmt.Sprintf("runner %d was already gone", rec.RunnerID))
		case err != nil:
			return res, err
		}
	}
	// Runners marked for the variable are looked for where the recorded runner lives (its type
	// and owner), else where the flags say.
	sweep := r
	// A runner marked for the variable may carry any description (it may have been changed
	// since), and everything marked for it goes.
	sweep.AnyDescription = true
	if recorded != nil {
		sweep.Attrs.Type = spec.RunnerType(recorded.Type)
		if len(recorded.ProjectIDs) > 0 {
			sweep.Attrs.ProjectID = recorded.ProjectIDs[0]
		}
		if len(recorded.GroupIDs) > 0 {
			sweep.Attrs.GroupID = recorded.GroupIDs[0]
		}
	}
	orphans, err := s.marked(ctx, sweep, func(id int64) bool { return recorded == nil || id != recorded.ID })
	if err != nil {
		if gitlab.StatusCode(err) != http.StatusForbidden {
			return res, err
		}
		res.Notes = append(res.Notes, fmt.Sprintf("could not look for other runners marked for the variable (%v); runner-bootstrap prune finds them", err))
		orphans = nil
	}
	if recorded != nil {
		if err := s.API.DeleteRunner(ctx, recorded.ID); err != nil && !gitlab.IsNotFound(err) {
			return res, err
		}
		s.Log.WithField("runner_id", recorded.ID).Infof("deleted runner %d", recorded.ID)
		res.Action = ActionDeleted
	}
	for _, id := range orphans {
		if err := s.API.DeleteRunner(ctx, id); err != nil && !gitlab.IsNotFound(err) {
			return res, err
		}
		s.Log.WithField("runner_id", id).Warnf("deleted runner %d: it was marked for %s", id, r.VarName())
		res.OrphansDeleted = append(res.OrphansDeleted, id)
		res.Action = ActionDeleted
	}
	if v != nil {
		if err := s.API.DeleteVariable(ctx, r.Var); err != nil && !gitlab.IsNotFound(err) {
			return res, err
		}
		s.Log.Infof("deleted %s", r.VarName())
		res.Action = ActionDeleted
	}
	if res.Action == ActionAbsent {
		s.Log.Infof("nothing to delete: %s does not exist and no runner is marked for it", r.VarName())
	}
	return res, nil
}
