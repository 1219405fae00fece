package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/bounded"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// snapshot is what the plan read from GitLab in bulk: namespaces, each owner's variables and
// runners (one paginated list each) and the details of the runners that matter. lifecycle.Ensure
// runs unchanged over a view of it, so the fleet keeps Ensure's rules and crash-safety order
// while its reads cost nothing per runner. Writes go to GitLab and update the snapshot.
type snapshot struct {
	api   lifecycle.API
	calls atomic.Int64

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
	deleted    map[int64]bool
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
		targets: map[int64]string{}, deleted: map[int64]bool{},
	}
}

// call counts a request to GitLab. The rate limit is the client's business: its budget gate
// paces every HTTP attempt.
func (s *snapshot) call(fn func()) {
	s.calls.Add(1)
	fn()
}

// variablesExpecting is implemented by *gitlab.Client: a list of variables whose pages are
// asked for at once when the caller knows about how many there are.
type variablesExpecting interface {
	ListVariablesExpecting(ctx context.Context, owner spec.OwnerKind, ownerID int64, expected int) ([]gitlab.Variable, error)
}

// listVariablesExpecting lists o's variables again: the snapshot holds what the plan read and
// what this run stored since, so with a client that can, every page is asked for at once.
func (s *snapshot) listVariablesExpecting(ctx context.Context, o ownerKey) ([]gitlab.Variable, error) {
	ve, ok := s.api.(variablesExpecting)
	if !ok {
		return s.api.ListVariables(ctx, o.kind, o.id)
	}
	s.mu.Lock()
	expected := len(s.vars[o])
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
	s.call(func() {
		if k.kind == spec.OwnerGroup {
			res.ns, res.err = s.api.ResolveGroup(ctx, k.ref)
		} else {
			res.ns, res.err = s.api.ResolveProject(ctx, k.ref)
		}
	})
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
			s.call(func() { vars, err = s.api.ListVariables(ctx, o.kind, o.id) })
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
		s.call(func() { rs, err = s.api.ListOwnerRunners(ctx, l.kind, l.id, l.typ) })
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
	gone := s.deleted[id]
	s.mu.Unlock()
	switch {
	case gone:
		return nil, notFound(fmt.Sprintf("runner %d", id))
	case ok && d == nil:
		return nil, notFound(fmt.Sprintf("runner %d", id))
	case ok:
		return d, nil
	case failed:
		return nil, derr
	}
	var err error
	s.call(func() { d, err = s.api.GetRunner(ctx, id) })
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

func (s *snapshot) putVariable(ref gitlab.VarRef, update func(v *gitlab.Variable)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.vars[ownerKey{ref.Owner, ref.OwnerID}]
	if !ok {
		return
	}
	k := varKey{ref.Key, scopeOf(ref.Owner, ref.Scope)}
	v, ok := m[k]
	if !ok {
		v = gitlab.Variable{Key: ref.Key, Scope: k.scope, Type: spec.EnvVar}
	}
	update(&v)
	m[k] = v
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

// errPlanned stops a dry run of Ensure where it would create a runner.
var errPlanned = errors.New("planned: a runner would be created here")

// view is the lifecycle.API one entry's Ensure runs against. Reads come from the snapshot;
// a runner list shows only the runners whose marker names this entry's variable, since
// Ensure looks for no others. With dry set, writes are only counted and nothing changes.
type view struct {
	s      *snapshot
	target string // the entry's variable, as markers name it
	desc   string // the entry's runner description
	dry    bool
	writes int
	// fresh is set when a create failed without an answer: GitLab may have created the
	// runner anyway, so Ensure's search for it must see GitLab's current list, not the plan's.
	fresh bool
}

var _ lifecycle.API = (*view)(nil)

func (v *view) ResolveProject(ctx context.Context, ref string) (gitlab.Namespace, error) {
	return v.s.namespace(ctx, nsKey{spec.OwnerProject, ref})
}

func (v *view) ResolveGroup(ctx context.Context, ref string) (gitlab.Namespace, error) {
	return v.s.namespace(ctx, nsKey{spec.OwnerGroup, ref})
}

func (v *view) CreateRunner(ctx context.Context, a gitlab.RunnerAttrs) (gitlab.NewToken, error) {
	v.writes++
	if v.dry {
		return gitlab.NewToken{}, errPlanned
	}
	var nt gitlab.NewToken
	var err error
	v.s.call(func() { nt, err = v.s.api.CreateRunner(ctx, a) })
	if gitlab.IsAmbiguous(err) {
		v.fresh = true
	}
	return nt, err
}

func (v *view) GetRunner(ctx context.Context, id int64) (*gitlab.Runner, error) {
	return v.s.runner(ctx, id)
}

func (v *view) UpdateRunner(ctx context.Context, id int64, a gitlab.RunnerAttrs) error {
	v.writes++
	if v.dry {
		return nil
	}
	var err error
	v.s.call(func() { err = v.s.api.UpdateRunner(ctx, id, a) })
	if err == nil {
		v.s.mu.Lock()
		if d := v.s.details[id]; d != nil {
			u := *d
			u.Description, u.TagList, u.RunUntagged, u.Locked = a.Description, a.TagList, a.RunUntagged, a.Locked
			u.Paused, u.AccessLevel, u.MaintenanceNote = a.Paused, a.AccessLevel, a.MaintenanceNote
			u.MaximumTimeout = a.MaximumTimeout
			v.s.details[id] = &u
		}
		v.s.mu.Unlock()
	}
	return err
}

func (v *view) DeleteRunner(ctx context.Context, id int64) error {
	v.writes++
	if v.dry {
		return nil
	}
	var err error
	v.s.call(func() { err = v.s.api.DeleteRunner(ctx, id) })
	if err == nil || gitlab.IsNotFound(err) {
		v.s.mu.Lock()
		v.s.deleted[id] = true
		v.s.mu.Unlock()
	}
	return err
}

func (v *view) ResetRunnerToken(ctx context.Context, id int64) (gitlab.NewToken, error) {
	v.writes++
	if v.dry {
		return gitlab.NewToken{RunnerID: id}, nil
	}
	var nt gitlab.NewToken
	var err error
	v.s.call(func() { nt, err = v.s.api.ResetRunnerToken(ctx, id) })
	return nt, err
}

func (v *view) ResetRunnerTokenWithToken(ctx context.Context, current token.Secret) (gitlab.NewToken, error) {
	v.writes++
	if v.dry {
		return gitlab.NewToken{}, nil
	}
	var nt gitlab.NewToken
	var err error
	v.s.call(func() { nt, err = v.s.api.ResetRunnerTokenWithToken(ctx, current) })
	return nt, err
}

// ListOwnerRunners answers from the owner's list: the runners whose marker names this
// entry's variable, and any runner with the entry's description whose details were not read
// (there are none after Plan, which reads all of those).
func (v *view) ListOwnerRunners(ctx context.Context, owner spec.OwnerKind, ownerID int64, typ spec.RunnerType) ([]gitlab.RunnerSummary, error) {
	k := listKey{owner, ownerID, typ}
	if v.fresh {
		var out []gitlab.RunnerSummary
		var err error
		v.s.call(func() { out, err = v.s.api.ListOwnerRunners(ctx, owner, ownerID, typ) })
		return out, err
	}
	v.s.mu.Lock()
	list, listed := v.s.runners[k]
	err := v.s.runnerErr[k]
	var out []gitlab.RunnerSummary
	for _, r := range list {
		if v.s.deleted[r.ID] {
			continue
		}
		if _, read := v.s.details[r.ID]; read {
			if v.s.targets[r.ID] == v.target {
				out = append(out, r)
			}
		} else if r.Description == v.desc {
			out = append(out, r)
		}
	}
	v.s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !listed {
		v.s.call(func() { out, err = v.s.api.ListOwnerRunners(ctx, owner, ownerID, typ) })
	}
	return out, err
}

func (v *view) ListManagers(ctx context.Context, id int64) ([]gitlab.Manager, error) {
	var ms []gitlab.Manager
	var err error
	v.s.call(func() { ms, err = v.s.api.ListManagers(ctx, id) })
	return ms, err
}

func (v *view) GetVariable(ctx context.Context, ref gitlab.VarRef) (*gitlab.Variable, error) {
	got, listed, err := v.s.variable(ref)
	switch {
	case err != nil:
		return nil, err
	case listed && got == nil:
		return nil, notFound(ref.String())
	case listed:
		return got, nil
	}
	v.s.call(func() { got, err = v.s.api.GetVariable(ctx, ref) })
	return got, err
}

func (v *view) CreateVariable(ctx context.Context, ref gitlab.VarRef, w gitlab.VariableWrite) error {
	v.writes++
	if v.dry {
		return nil
	}
	var err error
	v.s.call(func() { err = v.s.api.CreateVariable(ctx, ref, w) })
	if err == nil {
		v.s.putVariable(ref, func(x *gitlab.Variable) {
			applyWrite(x, w)
			x.Hidden = w.Hidden
		})
	}
	return err
}

func (v *view) UpdateVariable(ctx context.Context, ref gitlab.VarRef, w gitlab.VariableWrite) error {
	v.writes++
	if v.dry {
		return nil
	}
	var err error
	v.s.call(func() { err = v.s.api.UpdateVariable(ctx, ref, w) })
	if err == nil {
		v.s.putVariable(ref, func(x *gitlab.Variable) { applyWrite(x, w) })
	}
	return err
}

func applyWrite(x *gitlab.Variable, w gitlab.VariableWrite) {
	if w.Description != nil {
		x.Description = *w.Description
	}
	if w.Protected != nil {
		x.Protected = *w.Protected
	}
	if w.Masked != nil {
		x.Masked = *w.Masked
	}
	if w.Type != nil {
		x.Type = *w.Type
	}
	if w.Raw != nil {
		x.Raw = *w.Raw
	}
}

func (v *view) DeleteVariable(ctx context.Context, ref gitlab.VarRef) error {
	v.writes++
	if v.dry {
		return nil
	}
	var err error
	v.s.call(func() { err = v.s.api.DeleteVariable(ctx, ref) })
	if err == nil || gitlab.IsNotFound(err) {
		v.s.mu.Lock()
		if m, ok := v.s.vars[ownerKey{ref.Owner, ref.OwnerID}]; ok {
			delete(m, varKey{ref.Key, scopeOf(ref.Owner, ref.Scope)})
		}
		v.s.mu.Unlock()
	}
	return err
}

func (v *view) ListVariables(ctx context.Context, owner spec.OwnerKind, ownerID int64) ([]gitlab.Variable, error) {
	var vs []gitlab.Variable
	var err error
	v.s.call(func() { vs, err = v.s.api.ListVariables(ctx, owner, ownerID) })
	return vs, err
}
