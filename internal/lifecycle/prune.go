package lifecycle

import (
	"context"
	"fmt"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// PruneOptions select what prune looks at.
type PruneOptions struct {
	Owner   spec.OwnerKind
	OwnerID int64
	Types   []spec.RunnerType
	// OlderThan is a grace period: an unreferenced runner is pruned only when its last contact
	// (or, never contacted, its creation) is older than this (0: at once). A runner a live
	// variable references is never pruned, whatever its age: its token is what the variable's
	// deploy jobs hand out.
	OlderThan time.Duration
	DryRun    bool
	// Progress, if set, is called after each runner prune deletes (or would delete).
	Progress func(PruneItem)
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

// Prune finds runners this tool created (they carry its marker) that the owner owns and that
// no variable references any more (and, with OlderThan, that have been idle that long), and
// deletes them unless DryRun. Runners without the marker, runners the list shows but another
// owner owns (a group's list shows its ancestors' runners, a project's list runners shared
// with it), and runners a live variable references are never touched.
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
			if !ok || !OwnedBy(d, o.Owner, o.OwnerID, typ) {
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
			}
			items = append(items, it)
			if o.Progress != nil {
				o.Progress(it)
			}
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
	if rec != nil && rec.RunnerID == d.ID {
		return "", nil
	}
	reason := fmt.Sprintf("no variable references it (created for %s)", m.Target)
	if olderThan > 0 {
		last := m.CreatedAt
		if d.ContactedAt != nil {
			last = *d.ContactedAt
		}
		idle := s.Now().Sub(last)
		if last.IsZero() || idle <= olderThan {
			return "", nil
		}
		if d.ContactedAt == nil {
			return fmt.Sprintf("%s and never contacted since it was created %s ago", reason, roundDuration(idle)), nil
		}
		return fmt.Sprintf("%s and last contacted %s ago, beyond --older-than %s", reason, roundDuration(idle), duration.Duration(olderThan)), nil
	}
	return reason, nil
}
