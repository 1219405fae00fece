package audit

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/bounded"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// owner is one project, group or the instance in scope.
type owner struct {
	kind spec.OwnerKind
	id   int64
	path string
}

func (o owner) name() string {
	if o.kind == spec.OwnerInstance {
		return "the instance"
	}
	return string(o.kind) + " " + o.path
}

// scan is one audit run's state; results of concurrent reads are merged under mu.
type scan struct {
	api  API
	opts Options
	now  time.Time

	mu       sync.Mutex
	notes    []string
	settings *gitlab.InstanceSettings
	regState map[owner]gitlab.RegistrationToken
	vars     map[owner][]gitlab.Variable
	listed   map[int64]owner // runner id -> the owner whose list showed it
	details  map[int64]*gitlab.Runner
	missing  map[int64]bool // recorded runners GitLab answered 404 for
	origins  map[int64]gitlab.RunnerOrigin
	managers map[int64][]gitlab.Manager
}

func (s *scan) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// Run audits the scope. It only reads. An error means the scope itself could not be read
// (unknown group, no access); what could not be read inside it becomes a note.
func Run(ctx context.Context, api API, o Options) (Report, error) {
	if o.WarnWithin <= 0 {
		o.WarnWithin = 7 * 24 * time.Hour
	}
	if o.Concurrency < 1 {
		o.Concurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &scan{
		api: api, opts: o, now: o.Now().UTC(),
		regState: map[owner]gitlab.RegistrationToken{}, vars: map[owner][]gitlab.Variable{},
		listed: map[int64]owner{}, details: map[int64]*gitlab.Runner{}, missing: map[int64]bool{},
		origins: map[int64]gitlab.RunnerOrigin{}, managers: map[int64][]gitlab.Manager{},
	}
	owners, scope, err := s.resolve(ctx)
	if err != nil {
		return Report{}, err
	}
	s.readSettings(ctx)
	if err := s.readOwners(ctx, owners); err != nil {
		return Report{}, err
	}
	inScope := s.readRunners(ctx, owners)
	s.readOrigins(ctx, inScope)
	rep := s.build(ctx, owners, inScope)
	rep.Scope = scope
	return rep, ctx.Err()
}

// resolve turns the scope flags into the owners to read.
func (s *scan) resolve(ctx context.Context) ([]owner, Scope, error) {
	switch s.opts.Kind {
	case spec.OwnerProject:
		ns, err := s.api.ResolveProject(ctx, s.opts.Ref)
		if err != nil {
			return nil, Scope{}, err
		}
		return []owner{{spec.OwnerProject, ns.ID, ns.FullPath}}, Scope{Kind: "project", ID: ns.ID, Path: ns.FullPath, Projects: 1}, nil
	case spec.OwnerGroup:
		ns, err := s.api.ResolveGroup(ctx, s.opts.Ref)
		if err != nil {
			return nil, Scope{}, err
		}
		owners := []owner{{spec.OwnerGroup, ns.ID, ns.FullPath}}
		var groups, projects []gitlab.Namespace
		if s.opts.IncludeSubgroups {
			groups, projects, err = s.api.ListDescendants(ctx, ns.ID)
		} else {
			projects, err = s.api.ListGroupProjects(ctx, ns.ID)
		}
		if err != nil {
			return nil, Scope{}, err
		}
		for _, g := range groups {
			owners = append(owners, owner{spec.OwnerGroup, g.ID, g.FullPath})
		}
		for _, p := range projects {
			owners = append(owners, owner{spec.OwnerProject, p.ID, p.FullPath})
		}
		return owners, Scope{Kind: "group", ID: ns.ID, Path: ns.FullPath, IncludeSubgroups: s.opts.IncludeSubgroups, Groups: 1 + len(groups), Projects: len(projects)}, nil
	}
	return []owner{{kind: spec.OwnerInstance}}, Scope{Kind: "instance"}, nil
}

// readSettings reads the instance setting; without an administrator's token it says so.
func (s *scan) readSettings(ctx context.Context) {
	st, err := s.api.ApplicationSettings(ctx)
	if err != nil {
		why := "it needs an administrator's token"
		if gitlab.StatusCode(err) != 401 && gitlab.StatusCode(err) != 403 {
			why = err.Error()
		}
		s.note("The instance setting allow_runner_registration_token could not be read (%s), so whether registration tokens still work instance-wide is not reported.", why)
		return
	}
	if st.AllowRegistrationToken == nil {
		s.note("This GitLab does not report allow_runner_registration_token (versions before 16.x); registration tokens work there unless each project and group shows none.")
	}
	s.settings = &st
}

// readOwners reads, per project and group, whether a registration token exists, its
// variables and its runner list, with bounded concurrency. Failing to read the named
// scope's own runners is an error; anything else becomes a note.
func (s *scan) readOwners(ctx context.Context, owners []owner) error {
	var first error
	var firstOnce sync.Once
	forEach(ctx, len(owners), s.opts.Concurrency, func(i int) {
		o := owners[i]
		if o.kind != spec.OwnerInstance {
			st, err := s.api.RegistrationTokenState(ctx, o.kind, o.id)
			s.mu.Lock()
			if err != nil {
				s.notes = append(s.notes, fmt.Sprintf("Could not read whether %s has a registration token: %v.", o.name(), err))
			} else {
				s.regState[o] = st
			}
			s.mu.Unlock()
		}
		vars, err := s.api.ListVariables(ctx, o.kind, o.id)
		if err != nil {
			s.note("Could not list the CI/CD variables of %s: %v.", o.name(), err)
		} else {
			s.mu.Lock()
			s.vars[o] = vars
			s.mu.Unlock()
		}
		for _, typ := range runnerTypes(o.kind) {
			list, err := s.api.ListOwnerRunners(ctx, o.kind, o.id, typ)
			if err != nil {
				if i == 0 {
					firstOnce.Do(func() { first = err })
					return
				}
				s.note("Could not list the runners of %s: %v.", o.name(), err)
				continue
			}
			s.mu.Lock()
			for _, r := range list {
				if _, seen := s.listed[r.ID]; !seen {
					s.listed[r.ID] = o
				}
			}
			s.mu.Unlock()
		}
	})
	return first
}

// runnerTypes are the runner types an owner's list is asked for: its own (the instance:
// every type, since /runners/all lists the whole instance).
func runnerTypes(k spec.OwnerKind) []spec.RunnerType {
	switch k {
	case spec.OwnerProject:
		return []spec.RunnerType{spec.ProjectType}
	case spec.OwnerGroup:
		return []spec.RunnerType{spec.GroupType}
	}
	return []spec.RunnerType{spec.InstanceType, spec.GroupType, spec.ProjectType}
}

// readRunners reads every listed runner and every runner a managed variable records, and
// returns the ids of those owned inside the scope (lists also show ancestors' runners).
func (s *scan) readRunners(ctx context.Context, owners []owner) []int64 {
	ids := map[int64]bool{}
	for id := range s.listed {
		ids[id] = true
	}
	for _, vs := range s.vars {
		for _, v := range vs {
			if rec, ok := record.ParseVariable(v.Description); ok {
				ids[rec.RunnerID] = true
			}
		}
	}
	all := make([]int64, 0, len(ids))
	for id := range ids {
		all = append(all, id)
	}
	slices.Sort(all)
	var done int
	forEach(ctx, len(all), s.opts.Concurrency, func(i int) {
		id := all[i]
		d, err := s.api.GetRunner(ctx, id)
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case gitlab.IsNotFound(err):
			s.missing[id] = true
		case err != nil:
			s.notes = append(s.notes, fmt.Sprintf("Could not read runner %d: %v.", id, err))
		default:
			s.details[id] = d
		}
		done++
		if s.opts.Progress != nil {
			s.opts.Progress(id, done, len(all))
		}
	})
	var in []int64
	for _, id := range all {
		if d := s.details[id]; d != nil && ownedInScope(d, owners) {
			in = append(in, id)
		}
	}
	return in
}

func ownedInScope(d *gitlab.Runner, owners []owner) bool {
	for _, o := range owners {
		switch {
		case o.kind == spec.OwnerInstance:
			return true
		case o.kind == spec.OwnerGroup && d.Type == string(spec.GroupType) && slices.Contains(d.GroupIDs, o.id):
			return true
		case o.kind == spec.OwnerProject && d.Type == string(spec.ProjectType) && len(d.ProjectIDs) > 0 && d.ProjectIDs[0] == o.id:
			return true
		}
	}
	return false
}

// readOrigins asks GraphQL how each runner was created and which managers it has; where
// GraphQL is not available it falls back to the REST managers list (17.1+) and reports the
// creation method as unknown.
func (s *scan) readOrigins(ctx context.Context, ids []int64) {
	if len(ids) == 0 {
		return
	}
	if !s.opts.Server.Has(gitlab.CapRunnerCreationMethod) {
		s.note("GitLab %s cannot say how runners were created (GraphQL CiRunner.creationMethod arrived in %s), so runners registered with a registration token are not found and every creation method is unknown.", s.opts.Server.Version, gitlab.Requirement(gitlab.CapRunnerCreationMethod))
	}
	origins, err := s.api.RunnerOrigins(ctx, ids)
	if err == nil {
		s.origins = origins
		for id, o := range origins {
			s.managers[id] = o.Managers
		}
		return
	}
	s.note("GitLab's GraphQL API did not answer (%v), so how runners were created is reported as unknown.", err)
	if !s.opts.Server.Has(gitlab.CapRunnerManagers) {
		s.note("GitLab %s has no REST list of runner managers (%s), so managers and shared tokens are not reported.", s.opts.Server.Version, gitlab.Requirement(gitlab.CapRunnerManagers))
		return
	}
	var routeMissing bool
	forEach(ctx, len(ids), s.opts.Concurrency, func(i int) {
		s.mu.Lock()
		skip := routeMissing
		s.mu.Unlock()
		if skip {
			return
		}
		ms, err := s.api.ListManagers(ctx, ids[i])
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case err == nil:
			s.managers[ids[i]] = ms
		case gitlab.IsNotFound(err) && !routeMissing:
			routeMissing = true
			s.notes = append(s.notes, "GET /runners/:id/managers is not available here (GitLab before 17.1), so managers and shared tokens are not reported.")
		case !gitlab.IsNotFound(err):
			s.notes = append(s.notes, fmt.Sprintf("Could not list the managers of runner %d: %v.", ids[i], err))
		}
	})
}

// forEach runs fn(i) for i in [0,n) with at most conc at once, as apply does.
var forEach = bounded.ForEach

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity.rank() != b.Severity.rank() {
			return a.Severity.rank() > b.Severity.rank()
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Object < b.Object
	})
}
