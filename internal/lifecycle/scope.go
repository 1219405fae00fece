package lifecycle

import (
	"context"
	"fmt"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// Scope is where rotate --all looks for managed variables: a project, a group (with its
// subgroups and projects when IncludeSubgroups is set) or the instance.
type Scope struct {
	Kind             spec.OwnerKind
	Ref              string // the project's or group's path or id; empty for the instance
	IncludeSubgroups bool
}

// Descendants lists a group's subgroups and projects, at any depth.
type Descendants interface {
	ListDescendants(ctx context.Context, groupID int64) (groups, projects []gitlab.Namespace, err error)
}

// Owners resolves a scope to the owners whose variables are searched; the first is the one
// the scope names.
func Owners(ctx context.Context, ns Namespaces, d Descendants, sc Scope) ([]Owner, error) {
	switch sc.Kind {
	case spec.OwnerProject:
		n, err := ns.ResolveProject(ctx, sc.Ref)
		if err != nil {
			return nil, err
		}
		return []Owner{{Kind: spec.OwnerProject, ID: n.ID, Path: n.FullPath}}, nil
	case spec.OwnerGroup:
		n, err := ns.ResolveGroup(ctx, sc.Ref)
		if err != nil {
			return nil, err
		}
		owners := []Owner{{Kind: spec.OwnerGroup, ID: n.ID, Path: n.FullPath}}
		if !sc.IncludeSubgroups {
			return owners, nil
		}
		groups, projects, err := d.ListDescendants(ctx, n.ID)
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			owners = append(owners, Owner{Kind: spec.OwnerGroup, ID: g.ID, Path: g.FullPath})
		}
		for _, p := range projects {
			owners = append(owners, Owner{Kind: spec.OwnerProject, ID: p.ID, Path: p.FullPath})
		}
		return owners, nil
	}
	return []Owner{{Kind: spec.OwnerInstance}}, nil
}

// ScopeName is "group platform and its 3 subgroups and projects", for messages.
func ScopeName(owners []Owner, subgroups bool) string {
	o := owners[0]
	name := "the instance"
	if o.Kind != spec.OwnerInstance {
		name = fmt.Sprintf("%s %s", o.Kind, o.Path)
	}
	if subgroups {
		switch n := len(owners) - 1; n {
		case 0:
			name += " (it has no subgroups or projects)"
		case 1:
			name += " and its 1 subgroup or project"
		default:
			name += fmt.Sprintf(" and its %d subgroups and projects", n)
		}
	}
	return name
}

// BulkReport is the outcome of a bulk rotation: one item per variable (and per owner whose
// variables could not be listed), with the counts.
type BulkReport struct {
	Rotated int        `json:"rotated"`
	Skipped int        `json:"skipped"`
	Failed  int        `json:"failed"`
	Items   []BulkItem `json:"variables"`
}

// Count adds the items to the report's counts: rotated, skipped, and everything else failed.
func (b *BulkReport) Count(items []BulkItem) {
	b.Items = append(b.Items, items...)
	for _, it := range items {
		switch it.Action {
		case ActionRotated:
			b.Rotated++
		case ActionSkipped:
			b.Skipped++
		default:
			b.Failed++
		}
	}
}

// RotateScope rotates every variable this tool manages in owners, with at most concurrency
// rotations in flight; started is called once the variables are known (for progress) and
// done after each. An owner the user named that cannot be listed, or no managed variable at
// all, is an error; a descendant that cannot be listed is a failed item.
func (s *Service) RotateScope(ctx context.Context, owners []Owner, subgroups bool, o RotateOptions, concurrency int, started func(n int), done func(BulkItem)) (BulkReport, error) {
	refs, unlisted, err := s.ManagedVariables(ctx, owners)
	if err != nil {
		return BulkReport{}, err
	}
	for _, it := range unlisted {
		s.Log.Errorf("%s: %s", it.Variable, it.Error)
	}
	if len(refs) == 0 && len(unlisted) == 0 {
		// An empty table and exit 0 would hide a schedule pointed at the wrong place.
		return BulkReport{}, fail.WithCode(fail.CodeNotFound, fmt.Errorf("no variable managed by runner-bootstrap in %s: nothing to rotate; check the scope, or create a runner there first with runner-bootstrap create", ScopeName(owners, subgroups)))
	}
	if started != nil {
		started(len(refs))
	}
	var b BulkReport
	b.Count(unlisted)
	b.Count(s.RotateAll(ctx, refs, o, concurrency, done))
	return b, nil
}
