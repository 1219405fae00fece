package fleet

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/bounded"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// snapshot is what the plan read from GitLab in bulk: namespaces, each owner's variables and
// runners (one paginated list each) and the details of the runners that matter. Each entry's
// lifecycle.State is observed from it (lifecycle.ObserveFrom), so the fleet keeps lifecycle's
// rules and trust checks while its reads cost nothing per runner. It only reads: the writes
// are lifecycle.Execute's, on the GitLab client.
type snapshot struct {
	api lifecycle.API

	mu         sync.Mutex
	namespaces map[nsKey]nsResult
	paths      map[ownerKey]string
	vars       map[ownerKey]map[varKey]gitlab.Variable
	varErr     map[ownerKey]error
	runners    map[listKey][]gitlab.RunnerSummary
	runnerErr  map[listKey]error
	details    map[int64]*gitlab.Runner // nil: GitLab answered 404
	detailErr  map[int64]error
	targets    map[int64]string // marker target of each runner whose details were read
}

type nsKey struct {
	kind spec.OwnerKind
	ref  string
}

type nsResult struct {
	ns  gitlab.Namespace
	err error
}

type ownerKey struct {
	kind spec.OwnerKind
	id   int64
}

type varKey struct{ key, scope string }

// listKey is one runner list: the runners of one type that an owner has.
type listKey struct {
	kind spec.OwnerKind
	id   int64
	typ  spec.RunnerType
}

func newSnapshot(api lifecycle.API) *snapshot {
	return &snapshot{
		api:        api,
		namespaces: map[nsKey]nsResult{}, paths: map[ownerKey]string{},
		vars: map[ownerKey]map[varKey]gitlab.Variable{}, varErr: map[ownerKey]error{},
		runners: map[listKey][]gitlab.RunnerSummary{}, runnerErr: map[listKey]error{},
		details: map[int64]*gitlab.Runner{}, detailErr: map[int64]error{},
		targets: map[int64]string{},
	}
}

// variablesExpecting is implemented by *gitlab.Client: a list of variables whose pages are
// asked for at once when the caller knows about how many there are.
type variablesExpecting interface {
	ListVariablesExpecting(ctx context.Context, owner spec.OwnerKind, ownerID int64, expected int) ([]gitlab.Variable, error)
}

// listVariablesExpecting lists o's variables again: the plan's list and the variables this
// run may have created tell about how many there are, so with a client that can, every page
// is asked for at once.
func (s *snapshot) listVariablesExpecting(ctx context.Context, o ownerKey, created int) ([]gitlab.Variable, error) {
	ve, ok := s.api.(variablesExpecting)
	if !ok {
		return s.api.ListVariables(ctx, o.kind, o.id)
	}
	s.mu.Lock()
	expected := len(s.vars[o]) + created
	s.mu.Unlock()
	return ve.ListVariablesExpecting(ctx, o.kind, o.id, expected)
}

// forEach runs fn(i) for i in [0,n) with at most conc running at once.
var forEach = bounded.ForEach

// resolveAll looks every project and group up once.
func (s *snapshot) resolveAll(ctx context.Context, refs []nsKey, conc int) {
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].kind != refs[j].kind {
			return refs[i].kind < refs[j].kind
		}
		return refs[i].ref < refs[j].ref
	})
	forEach(ctx, len(refs), conc, func(i int) { _, _ = s.namespace(ctx, refs[i]) })
}

func (s *snapshot) namespace(ctx context.Context, k nsKey) (gitlab.Namespace, error) {
	s.mu.Lock()
	res, ok := s.namespaces[k]
	s.mu.Unlock()
	if ok {
		return res.ns, res.err
	}
	if k.kind == spec.OwnerGroup {
		res.ns, res.err = s.api.ResolveGroup(ctx, k.ref)
	} else {
		res.ns, res.err = s.api.ResolveProject(ctx, k.ref)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.namespaces[k] = res
	if res.err == nil {
		s.paths[ownerKey{k.kind, res.ns.ID}] = res.ns.FullPath
	}
	return res.ns, res.err
}

// resolved returns a namespace looked up before, if it was found.
func (s *snapshot) resolved(k nsKey) (gitlab.Namespace, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, ok := s.namespaces[k]
	return res.ns, ok && res.err == nil
}

// ownerName is "project platform/deploy" (or "project 42" when only the id is known).
func (s *snapshot) ownerName(kind spec.OwnerKind, id int64) string {
	if kind == spec.OwnerInstance {
		return "the instance"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.paths[ownerKey{kind, id}]; ok {
		return fmt.Sprintf("%s %s", kind, p)
	}
	return fmt.Sprintf("%s %d", kind, id)
}

// listAll reads each owner's variables and each owner's runners of a type, once each.
func (s *snapshot) listAll(ctx context.Context, owners []ownerKey, lists []listKey, conc int) {
	// What was read already (directLists, before the look-ups) is not read again.
	s.mu.Lock()
	owners = slices.DeleteFunc(slices.Clone(owners), func(o ownerKey) bool {
		_, done := s.vars[o]
		_, failed := s.varErr[o]
		return done || failed
	})
	lists = slices.DeleteFunc(slices.Clone(lists), func(l listKey) bool {
		_, done := s.runners[l]
		_, failed := s.runnerErr[l]
		return done || failed
	})
	s.mu.Unlock()
	n := len(owners) + len(lists)
	forEach(ctx, n, conc, func(i int) {
		if i < len(owners) {
			o := owners[i]
			var vars []gitlab.Variable
			var err error
			vars, err = s.api.ListVariables(ctx, o.kind, o.id)
			s.mu.Lock()
			defer s.mu.Unlock()
			if err != nil {
				s.varErr[o] = err
				return
			}
			m := map[varKey]gitlab.Variable{}
			for _, v := range vars {
				m[varKey{v.Key, scopeOf(o.kind, v.Scope)}] = v
			}
			s.vars[o] = m
			return
		}
		l := lists[i-len(owners)]
		var rs []gitlab.RunnerSummary
		var err error
		rs, err = s.api.ListOwnerRunners(ctx, l.kind, l.id, l.typ)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.runnerErr[l] = err
			return
		}
		s.runners[l] = rs
	})
}

func scopeOf(kind spec.OwnerKind, scope string) string {
	if kind == spec.OwnerInstance || scope == "" {
		return spec.DefaultScope
	}
	return scope
}

// fetchDetails reads the details (maintenance note, tags, owner) of runners not read yet.
func (s *snapshot) fetchDetails(ctx context.Context, ids []int64, conc int) {
	s.mu.Lock()
	var todo []int64
	seen := map[int64]bool{}
	for _, id := range ids {
		_, done := s.details[id]
		_, failed := s.detailErr[id]
		if !done && !failed && !seen[id] {
			seen[id] = true
			todo = append(todo, id)
		}
	}
	s.mu.Unlock()
	slices.Sort(todo)
	forEach(ctx, len(todo), conc, func(i int) { _, _ = s.runner(ctx, todo[i]) })
}

// runner returns a runner's details, reading them on first use.
func (s *snapshot) runner(ctx context.Context, id int64) (*gitlab.Runner, error) {
	s.mu.Lock()
	d, ok := s.details[id]
	derr, failed := s.detailErr[id]
	s.mu.Unlock()
	switch {
	case ok && d == nil:
		return nil, notFound(fmt.Sprintf("runner %d", id))
	case ok:
		return d, nil
	case failed:
		return nil, derr
	}
	var err error
	d, err = s.api.GetRunner(ctx, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case gitlab.IsNotFound(err):
		s.details[id] = nil
	case err != nil:
		s.detailErr[id] = err
	default:
		s.details[id] = d
		if _, m, ok := record.ParseNote(d.MaintenanceNote); ok {
			s.targets[id] = m.Target
		}
	}
	return d, err
}

// variable returns a listed variable; listed is false when its owner was not listed.
func (s *snapshot) variable(ref gitlab.VarRef) (v *gitlab.Variable, listed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := ownerKey{ref.Owner, ref.OwnerID}
	if err, ok := s.varErr[o]; ok {
		return nil, true, err
	}
	m, ok := s.vars[o]
	if !ok {
		return nil, false, nil
	}
	if got, ok := m[varKey{ref.Key, scopeOf(ref.Owner, ref.Scope)}]; ok {
		return &got, true, nil
	}
	return nil, true, nil
}

// recordedRunners are the runners named by a managed variable in any listed owner.
func (s *snapshot) recordedRunners() map[int64]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]bool{}
	for _, m := range s.vars {
		for _, v := range m {
			if rec, ok := record.ParseVariable(v.Description); ok {
				out[rec.RunnerID] = true
			}
		}
	}
	return out
}

func notFound(what string) error {
	return fail.WithCode(fail.CodeNotFound, fmt.Errorf("%s was not found (404): %w", what, gitlab.ErrNotFound))
}

// The snapshot answers lifecycle's reads for Observe and Resolve: from the bulk lists, and with
// a request only for what no list covered. It writes nothing.
var (
	_ lifecycle.Reads      = (*snapshot)(nil)
	_ lifecycle.Namespaces = (*snapshot)(nil)
)

// ResolveProject looks a project up once for the whole plan.
func (s *snapshot) ResolveProject(ctx context.Context, ref string) (gitlab.Namespace, error) {
	return s.namespace(ctx, nsKey{spec.OwnerProject, ref})
}

// ResolveGroup looks a group up once for the whole plan.
func (s *snapshot) ResolveGroup(ctx context.Context, ref string) (gitlab.Namespace, error) {
	return s.namespace(ctx, nsKey{spec.OwnerGroup, ref})
}

// GetRunner is a runner's details, read once.
func (s *snapshot) GetRunner(ctx context.Context, id int64) (*gitlab.Runner, error) {
	return s.runner(ctx, id)
}

// ListOwnerRunners answers from the owner's list, read once.
func (s *snapshot) ListOwnerRunners(ctx context.Context, owner spec.OwnerKind, ownerID int64, typ spec.RunnerType) ([]gitlab.RunnerSummary, error) {
	k := listKey{owner, ownerID, typ}
	s.mu.Lock()
	list, listed := s.runners[k]
	err := s.runnerErr[k]
	s.mu.Unlock()
	if err != nil || listed {
		return list, err
	}
	return s.api.ListOwnerRunners(ctx, owner, ownerID, typ)
}

// GetVariable answers from the owner's list of variables, read once.
func (s *snapshot) GetVariable(ctx context.Context, ref gitlab.VarRef) (*gitlab.Variable, error) {
	got, listed, err := s.variable(ref)
	switch {
	case err != nil:
		return nil, err
	case listed && got == nil:
		return nil, notFound(ref.String())
	case listed:
		return got, nil
	}
	return s.api.GetVariable(ctx, ref)
}
