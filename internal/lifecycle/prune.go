package lifecycle

import (
	"context"
	"fmt"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// PruneOptions select what prune looks at.
type PruneOptions struct {
	Owner   spec.OwnerKind
	OwnerID int64
	Types   []spec.RunnerType
	// OlderThan also prunes referenced runners not contacted for this long (0: never).
	OlderThan time.Duration
	DryRun    bool
}

// PruneItem is one runner prune deleted or would delete.
type PruneItem struct {
	RunnerID    int64  `json:"runner_id"`
	RunnerType  string `json:"runner_type"`
	Description string `json:"description"`
	Target      string `json:"variable"`
	Reason      string `json:"reason"`
	Deleted     bool   `json:"deleted"`
}

// Prune finds runners this tool created (they carry its marker) that no variable references
// any more, or that are stale beyond OlderThan, and deletes them unless DryRun. Runners
// without the marker are never touched.
func (s *Service) Prune(ctx context.Context, o PruneOptions) ([]PruneItem, error) {
	items := []PruneItem{}
	vars := map[string]*record.Variable{}
	seen := map[int64]bool{}
	for _, typ := range o.Types {
		list, err := s.API.ListOwnerRunners(ctx, o.Owner, o.OwnerID, typ)
		if err != nil {
			return items, err
		}
		for _, sum := range list {
			if seen[sum.ID] {
				continue
			}
			seen[sum.ID] = true
			d, err := s.API.GetRunner(ctx, sum.ID)
			if gitlab.IsNotFound(err) {
				continue
			}
			if err != nil {
				return items, err
			}
			_, m, ok := record.ParseNote(d.MaintenanceNote)
			if !ok {
				continue
			}
			reason, err := s.pruneReason(ctx, d, m, vars, o.OlderThan)
			if err != nil {
				return items, err
			}
			if reason == "" {
				continue
			}
			it := PruneItem{RunnerID: d.ID, RunnerType: d.Type, Description: d.Description, Target: m.Target, Reason: reason}
			if !o.DryRun {
				if err := s.API.DeleteRunner(ctx, d.ID); err != nil && !gitlab.IsNotFound(err) {
					return items, err
				}
				it.Deleted = true
				s.Log.WithField("runner_id", d.ID).Infof("pruned runner %d: %s", d.ID, reason)
			}
			items = append(items, it)
		}
	}
	return items, nil
}

func (s *Service) pruneReason(ctx context.Context, d *gitlab.Runner, m record.Runner, vars map[string]*record.Variable, olderThan time.Duration) (string, error) {
	rec, cached := vars[m.Target]
	if !cached {
		ref, ok := ParseTarget(m.Target)
		if ok {
			v, err := s.API.GetVariable(ctx, ref)
			switch {
			case err == nil:
				if r, ok := record.ParseVariable(v.Description); ok {
					rec = &r
				}
			case !gitlab.IsNotFound(err):
				return "", err
			}
		}
		vars[m.Target] = rec
	}
	if rec == nil || rec.RunnerID != d.ID {
		return fmt.Sprintf("no variable references it (created for %s)", m.Target), nil
	}
	if olderThan > 0 {
		last := m.CreatedAt
		if d.ContactedAt != nil {
			last = *d.ContactedAt
		}
		if !last.IsZero() && s.Now().Sub(last) > olderThan {
			if d.ContactedAt == nil {
				return fmt.Sprintf("never contacted since it was created %s ago", roundDuration(s.Now().Sub(last))), nil
			}
			return fmt.Sprintf("last contact %s ago, beyond --older-than %s", roundDuration(s.Now().Sub(last)), olderThan), nil
		}
	}
	return "", nil
}
