package lifecycle

import (
	"context"
	"fmt"
	"net/http"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// DeletePlan is what Delete would remove, read without a write.
type DeletePlan struct {
	// Result is the result so far: the recorded runner's id and the notes of the reads.
	Result Result
	// Runner is the recorded runner to delete (0: none, or already gone).
	Runner int64
	// Orphans are other runners marked for the variable.
	Orphans []int64
	// Variable is set when the variable exists.
	Variable bool
}

// Delete removes the runner recorded in the variable, any runner marked for the variable, and
// the variable. Deleting what is already gone succeeds with action "absent". Everything is
// looked up (PlanDelete) before anything is deleted, so a refused look-up changes nothing.
func (s *Service) Delete(ctx context.Context, r Resolved) (Result, error) {
	p, err := s.PlanDelete(ctx, r)
	res := p.Result
	if err != nil {
		return res, err
	}
	if p.Runner != 0 {
		if err := s.API.DeleteRunner(ctx, p.Runner); err != nil && !gitlab.IsNotFound(err) {
			return res, err
		}
		s.Log.WithField("runner_id", p.Runner).Infof("deleted runner %d", p.Runner)
		res.Action = ActionDeleted
	}
	for _, id := range p.Orphans {
		if err := s.API.DeleteRunner(ctx, id); err != nil && !gitlab.IsNotFound(err) {
			return res, err
		}
		s.Log.WithField("runner_id", id).Warnf("deleted runner %d: it was marked for %s", id, r.VarName())
		res.OrphansDeleted = append(res.OrphansDeleted, id)
		res.Action = ActionDeleted
	}
	if p.Variable {
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

// PlanDelete makes Delete's reads (the variable, the recorded runner through the trust check,
// the runners marked for the variable) and says what Delete would remove; it writes nothing.
// It refuses exactly where Delete does.
func (s *Service) PlanDelete(ctx context.Context, r Resolved) (DeletePlan, error) {
	serr := s.withServer(ctx, &r)
	p := DeletePlan{Result: newResult(r, ActionAbsent)}
	res := &p.Result
	if serr != nil {
		return p, serr
	}
	v, err := s.API.GetVariable(ctx, r.Var)
	if err != nil && !gitlab.IsNotFound(err) {
		return p, err
	}
	var recorded *gitlab.Runner
	if v != nil {
		rec, ok := record.ParseVariable(v.Description)
		if !ok {
			return p, notManaged(r.VarName())
		}
		p.Variable = true
		res.RunnerID = rec.RunnerID
		recorded, err = s.recordedRunner(ctx, r, rec)
		switch {
		case gitlab.IsNotFound(err):
			recorded = nil
			res.Notes = append(res.Notes, fmt.Sprintf("runner %d was already gone", rec.RunnerID))
		case err != nil:
			return p, err
		}
	}
	// Runners marked for the variable are looked for where the recorded runner lives (its type
	// and owner), else where the flags say.
	sweep := r
	// A runner marked for the variable may carry any description (it may have been changed
	// since), and everything marked for it goes.
	sweep.AnyDescription = true
	if recorded != nil {
		p.Runner = recorded.ID
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
			return p, err
		}
		res.Notes = append(res.Notes, fmt.Sprintf("could not look for other runners marked for the variable (%v); runner-bootstrap prune finds them", err))
		orphans = nil
	}
	p.Orphans = orphans
	return p, nil
}
