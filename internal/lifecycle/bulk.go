package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// Owner is a project, group or the instance whose variables are searched.
type Owner struct {
	Kind spec.OwnerKind
	ID   int64
	Path string
}

// ManagedVariables lists the variables this tool manages in the given owners. The first owner
// is the one the user named: failing to list it is an error. A descendant that cannot be listed
// (no rights there) becomes a failed item, so one subgroup does not stop the others.
func (s *Service) ManagedVariables(ctx context.Context, owners []Owner) ([]Resolved, []BulkItem, error) {
	var out []Resolved
	var failed []BulkItem
	for i, o := range owners {
		vars, err := s.API.ListVariables(ctx, o.Kind, o.ID)
		if err != nil {
			if i == 0 {
				return out, failed, err
			}
			failed = append(failed, BulkItem{Variable: fmt.Sprintf("%s %s (all variables)", o.Kind, o.Path), Result: Result{Action: "failed"}, Error: err.Error()})
			continue
		}
		for _, v := range vars {
			if strings.HasPrefix(v.Description, record.VariablePrefix) {
				ref := gitlab.VarRef{Owner: o.Kind, OwnerID: o.ID, Key: v.Key, Scope: v.Scope}
				r := Resolved{Var: ref, Spec: spec.Spec{Variable: spec.Variable{Key: ref.Key, Owner: ref.Owner, EnvironmentScope: ref.Scope}}}
				if o.Kind != spec.OwnerInstance {
					r.VarOwnerPath = string(o.Kind) + " " + o.Path
				}
				out = append(out, r)
			}
		}
	}
	return out, failed, nil
}

// BulkItem is the outcome of one variable in a bulk rotation.
type BulkItem struct {
	Variable string `json:"variable"`
	Result
	Error string `json:"error,omitempty"`
}

// RotateAll rotates every variable with at most concurrency rotations in flight. One failure
// does not stop the others; done is called after each variable (for progress).
func (s *Service) RotateAll(ctx context.Context, refs []Resolved, o RotateOptions, concurrency int, done func(BulkItem)) []BulkItem {
	if concurrency < 1 {
		concurrency = 1
	}
	items := make([]BulkItem, len(refs))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, r := range refs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := s.Rotate(ctx, r, o)
			it := BulkItem{Variable: r.VarName(), Result: res}
			if err != nil {
				it.Error = err.Error()
				it.Action = "failed"
			}
			items[i] = it
			if done != nil {
				mu.Lock()
				done(it)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return items
}
