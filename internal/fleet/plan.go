package fleet

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/output"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/progress"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// Action is what apply does for one entry, or for one runner with --prune.
type Action string

// Actions of a plan.
const (
	Create    Action = "create"
	Update    Action = "update"
	Replace   Action = "replace"
	Unchanged Action = "unchanged"
	Delete    Action = "delete"
	// Rotate and Skip are rotate --dry-run's: the token would be reset, or left as it is.
	Rotate Action = "rotate"
	Skip   Action = "skip"
	// Fail marks an entry that cannot be planned (its owner is unknown, its variable exists but
	// is not managed by this tool, ...); it is left alone and the run exits 1.
	Fail Action = "fail"
)

// Results reported in Item.Result besides lifecycle's actions (created, updated, ...).
const (
	ResultFailed = "failed"
	// ResultSuperseded: a concurrent run stored its own runner in the variable; the runner
	// this run created was deleted again.
	ResultSuperseded = "superseded"
)

// Item is one line of the plan and, after apply, its outcome. It never holds a token.
type Item struct {
	// Entry is "runners[3]" (empty for a runner deleted by --prune); Line its line.
	Entry            string   `json:"entry,omitempty"`
	Line             int      `json:"line,omitempty"`
	Action           Action   `json:"action"`
	RunnerType       string   `json:"runner_type,omitempty"`
	Owner            string   `json:"owner,omitempty"`
	RunnerID         int64    `json:"runner_id,omitempty"`
	PreviousRunnerID int64    `json:"previous_runner_id,omitempty"`
	Variable         string   `json:"variable,omitempty"`
	VariableKey      string   `json:"variable_key,omitempty"`
	Changes          []string `json:"changes,omitempty"`
	// Diff has the old and new value of each runner attribute in Changes.
	Diff           []lifecycle.Change `json:"diff,omitempty"`
	Orphans        []int64            `json:"orphans,omitempty"`
	Reason         string             `json:"reason,omitempty"`
	Notes          []string           `json:"notes,omitempty"`
	TokenExpiresAt *time.Time         `json:"token_expires_at,omitempty"`
	// Result is set by apply: created, updated, replaced, unchanged, deleted, superseded or failed.
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`

	resolved lifecycle.Resolved
	ok       bool           // resolved is set
	plan     lifecycle.Plan // what Decide planned; Execute carries it out
	target   string
	desc     string
	prune    *pruneTarget
}

// pruneTarget is what a Delete item removes.
type pruneTarget struct {
	variable *gitlab.VarRef // also delete this variable: it records the runner
}

// needsWork reports whether apply has anything to do for the item.
func (it *Item) needsWork() bool {
	switch it.Action {
	case Create, Update, Replace, Delete:
		return true
	case Unchanged:
		return it.plan.Writes()
	}
	return false
}

// Plan is what apply will do for one shard of a manifest.
type Plan struct {
	File  string `json:"-"`
	Shard Shard  `json:"-"`
	Prune bool   `json:"-"`
	Items []*Item
	// PruneSkipped says why --prune deletes nothing this time, if it does not.
	PruneSkipped string
	// Gitlab is the server's version and edition; Notes say what it stores differently from
	// what the manifest asks (once each, for all entries).
	Gitlab *gitlab.Info
	Notes  []string

	snap    *snapshot
	started time.Time
	calls   int64 // the client's count of API calls when the plan started
}

// Fleet plans and applies manifests against one GitLab.
type Fleet struct {
	API lifecycle.API
	// Log receives progress, the summary and warnings; it is the program's redacting logger.
	Log *logrus.Logger
	// Concurrency bounds the requests in flight (default 8).
	Concurrency int
	// Progress says where apply's progress goes (default: one line per item on Log).
	Progress progress.Options
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (f *Fleet) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// calls is the client's count of API calls (0 for an API that does not count them).
func (f *Fleet) calls() int64 {
	if c, ok := f.API.(interface{ Calls() int64 }); ok {
		return c.Calls()
	}
	return 0
}

func (f *Fleet) conc() int {
	if f.Concurrency < 1 {
		return 8
	}
	return f.Concurrency
}

// NewPlan starts a plan that another command fills with its own items (rotate and delete
// --dry-run), so that Summarize counts its time and API calls from here.
func (f *Fleet) NewPlan() *Plan {
	return &Plan{started: f.now(), calls: f.calls()}
}

// Plan reads GitLab in bulk and computes, for each entry of the shard, what Ensure would do.
// It only reads. Entries that cannot be planned are Fail items; an error is returned only
// when the manifest itself is wrong once ids are known (two entries resolve to one variable),
// with exit code 2.
func (f *Fleet) Plan(ctx context.Context, m *Manifest, sh Shard, prune bool) (*Plan, error) {
	p := &Plan{File: m.File, Shard: sh, Prune: prune, snap: newSnapshot(f.API), started: f.now(), calls: f.calls()}
	entries := m.Select(sh)

	// 1. Every project and group once; meanwhile the lists of step 3 for owners named by
	// numeric id, which need no look-up first: one round trip less before the first write.
	direct := directLists(entries)
	half := max(f.conc()/2, 1)
	prefetched := make(chan struct{})
	go func() {
		defer close(prefetched)
		p.snap.listAll(ctx, direct.owners, direct.lists, half)
	}()
	// The version decides what may be written (the description record, token expiry at
	// creation); it is read alongside the look-ups, so it costs no round trip.
	var srv gitlab.Server
	var srvErr error
	srvRead := make(chan struct{})
	go func() {
		defer close(srvRead)
		srv, srvErr = f.API.Server(ctx)
	}()
	p.snap.resolveAll(ctx, refsToResolve(m, entries, sh), max(f.conc()-half, 1))
	<-prefetched
	<-srvRead
	if err := firstAuthError(p.snap); err != nil {
		return nil, err
	}
	if srvErr != nil {
		return nil, fmt.Errorf("cannot read the GitLab version: %w", srvErr)
	}
	p.Gitlab = srv.Info()

	// 2. Each entry's spec, resolved from those answers by lifecycle's own Resolve.
	for _, e := range entries {
		it := &Item{Entry: e.Name(), Line: e.Line, RunnerType: string(e.Spec.Runner.Type), VariableKey: e.Spec.Variable.Key,
			Owner: runnerOwnerAsWritten(e.Spec.Runner), Variable: describeVariable(e.Spec.Variable)}
		r, err := lifecycle.ResolveFrom(ctx, p.snap, e.Spec)
		if err == nil {
			r.Server = srv
			// What this GitLab would drop is the manifest's mistake: refused for the whole
			// manifest before any write, as create refuses it.
			notes, err := lifecycle.Refuse(r)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", m.File, e.Line, err)
			}
			for _, n := range notes {
				if !slices.Contains(p.Notes, n) {
					p.Notes = append(p.Notes, n)
				}
			}
		}
		if err != nil {
			it.Action, it.Reason = Fail, err.Error()
		} else {
			it.resolved, it.ok, it.target, it.desc = r, true, r.Var.Target(), r.Attrs.Description
			it.Owner = r.OwnerPath
			it.Variable = variableName(r)
		}
		p.Items = append(p.Items, it)
	}
	if err := p.duplicates(m, entries); err != nil {
		return nil, err
	}

	// 3. One list of variables per variable owner, one list of runners per runner owner.
	var owners []ownerKey
	var lists []listKey
	seenOwner, seenList := map[ownerKey]bool{}, map[listKey]bool{}
	descs := map[listKey]map[string]bool{}
	for _, it := range p.Items {
		if !it.ok {
			continue
		}
		o := ownerKey{it.resolved.Var.Owner, it.resolved.Var.OwnerID}
		if !seenOwner[o] {
			seenOwner[o] = true
			owners = append(owners, o)
		}
		l := runnerList(it.resolved.Attrs)
		if !seenList[l] {
			seenList[l] = true
			lists = append(lists, l)
			descs[l] = map[string]bool{}
		}
		descs[l][it.desc] = true
	}
	p.snap.listAll(ctx, owners, lists, f.conc())

	// 4. Details only where the lists cannot answer: each managed variable's runner (tags,
	// note and owner are not in a list), and runners no variable records that carry an
	// entry's description (maybe orphans of an interrupted run).
	var ids []int64
	for _, it := range p.Items {
		if !it.ok {
			continue
		}
		if v, _, _ := p.snap.variable(it.resolved.Var); v != nil {
			if rec, ok := record.ParseVariable(v.Description); ok {
				ids = append(ids, rec.RunnerID)
			}
		}
	}
	recorded := p.snap.recordedRunners()
	for _, l := range lists {
		for _, r := range p.snap.runners[l] {
			if !recorded[r.ID] && descs[l][r.Description] {
				ids = append(ids, r.ID)
			}
		}
	}
	p.snap.fetchDetails(ctx, ids, f.conc())

	// 5. What Ensure would do: lifecycle's Observe over the snapshot, then Decide.
	for _, it := range p.Items {
		if it.ok {
			f.planEntry(ctx, it, p.snap)
		}
	}

	// 6. --prune: marked runners in the manifest's runner owners that no entry wants.
	if prune {
		p.planPrune(ctx, f, lists)
	}
	return p, nil
}

// planEntry observes the entry's state from the snapshot and lets lifecycle.Decide plan it.
func (f *Fleet) planEntry(ctx context.Context, it *Item, s *snapshot) {
	svc := &lifecycle.Service{API: f.API, Log: discardLogger(), Now: f.now}
	st, err := svc.ObserveFrom(ctx, it.resolved, s)
	if err != nil {
		it.Action, it.Reason = Fail, err.Error()
		return
	}
	p := lifecycle.Decide(it.resolved, st)
	it.plan = p
	res := p.Result
	it.Orphans = p.DeleteOrphans
	it.Changes, it.Diff = res.Changes, res.Diff
	it.Notes = res.Notes
	it.PreviousRunnerID = res.PreviousRunnerID
	switch {
	case p.Err != nil:
		it.Action, it.Reason = Fail, p.Err.Error()
	case p.Create != nil && res.PreviousRunnerID != 0:
		it.Action = Replace
		if p.Create.Missing {
			it.Reason = fmt.Sprintf("runner %d recorded in the variable no longer exists", res.PreviousRunnerID)
		} else {
			it.Reason = fmt.Sprintf("runner %d is a %s runner of another owner, and GitLab cannot move a runner", res.PreviousRunnerID, st.Runner.Type)
		}
		it.Changes, it.Diff = nil, nil
	case p.Create != nil:
		it.Action = Create
	case res.Action == lifecycle.ActionUpdated:
		it.Action = Update
		it.RunnerID, it.TokenExpiresAt = res.RunnerID, res.TokenExpiresAt
	default:
		it.Action = Unchanged
		it.RunnerID, it.TokenExpiresAt = res.RunnerID, res.TokenExpiresAt
	}
}

// planPrune finds the runners --prune deletes: in the runner lists of the manifest's owners,
// those that carry this tool's marker, that GitLab reports as owned by that owner (a list
// also shows an ancestor group's runners and runners shared with a project), and that no
// entry keeps. Runners without the marker are never candidates.
func (p *Plan) planPrune(ctx context.Context, f *Fleet, lists []listKey) {
	failed := 0
	for _, it := range p.Items {
		if it.Action == Fail {
			failed++
		}
	}
	if failed > 0 {
		p.PruneSkipped = fmt.Sprintf("%s could not be planned, so --prune deletes nothing this run: it needs to know what every entry keeps", output.Plural(failed, "entry", "entries"))
		f.Log.Warn(p.PruneSkipped)
		return
	}
	keep := map[int64]bool{}
	byTarget := map[string]*Item{}
	for _, it := range p.Items {
		byTarget[it.target] = it
		if it.Action == Update || it.Action == Unchanged {
			keep[it.RunnerID] = true
		}
		if it.Action == Replace && it.PreviousRunnerID != 0 {
			// Its entry deletes it once the replacement's token is stored, not before.
			keep[it.PreviousRunnerID] = true
		}
		for _, id := range it.Orphans {
			keep[id] = true // deleted by its entry already
		}
	}
	type cand struct {
		id int64
		l  listKey
	}
	var cands []cand
	var ids []int64
	seen := map[int64]bool{}
	for _, l := range lists {
		if err := p.snap.runnerErr[l]; err != nil {
			p.PruneSkipped = fmt.Sprintf("the runners of %s could not be listed (%v), so --prune deletes nothing there", p.snap.ownerName(l.kind, l.id), err)
			f.Log.Warn(p.PruneSkipped)
			continue
		}
		for _, r := range p.snap.runners[l] {
			if keep[r.ID] || seen[r.ID] {
				continue
			}
			seen[r.ID] = true
			cands = append(cands, cand{r.ID, l})
			ids = append(ids, r.ID)
		}
	}
	p.snap.fetchDetails(ctx, ids, f.conc())
	var items []*Item
	for _, c := range cands {
		d, err := p.snap.runner(ctx, c.id)
		if err != nil || d == nil || !lifecycle.OwnedBy(d, c.l.kind, c.l.id, c.l.typ) {
			if err != nil && !gitlab.IsNotFound(err) {
				f.Log.WithField("runner_id", c.id).Warnf("--prune leaves runner %d alone: %v", c.id, err)
			}
			continue
		}
		_, marker, marked := record.ParseNote(d.MaintenanceNote)
		if !marked {
			continue
		}
		it := &Item{Action: Delete, RunnerID: d.ID, RunnerType: d.Type, Owner: p.snap.ownerName(c.l.kind, c.l.id),
			prune: &pruneTarget{}, Variable: marker.Target}
		if e, ok := byTarget[marker.Target]; ok {
			recorded := e.RunnerID
			if recorded == 0 {
				recorded = e.PreviousRunnerID
			}
			it.Reason = fmt.Sprintf("created for the variable of %s, which records runner %d", e.Entry, recorded)
			it.Variable = e.Variable
			it.VariableKey = e.VariableKey
		} else {
			it.Reason = "no entry of the manifest wants it"
			if ref, ok := lifecycle.ParseTarget(marker.Target); ok {
				it.Variable, it.VariableKey = p.variableName(ref), ref.Key
				records, err := p.recordsRunner(ctx, ref, d.ID)
				if err != nil {
					f.Log.WithField("runner_id", d.ID).Warnf("--prune leaves runner %d alone: its variable could not be read (%v)", d.ID, err)
					continue
				}
				if records {
					it.prune.variable = &ref
					it.Reason += "; its variable is deleted too"
				}
			}
		}
		items = append(items, it)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].RunnerID < items[j].RunnerID })
	p.Items = append(p.Items, items...)
}

// recordsRunner reports whether the managed variable ref names runner id (reading it when
// its owner was not listed).
// A variable that cannot be read is an error: pruning the runner would leave a variable
// recording a deleted runner, which no later prune looks at.
func (p *Plan) recordsRunner(ctx context.Context, ref gitlab.VarRef, id int64) (bool, error) {
	v, listed, err := p.snap.variable(ref)
	if !listed && err == nil {
		v, err = p.snap.api.GetVariable(ctx, ref)
	}
	if gitlab.IsNotFound(err) {
		return false, nil
	}
	if err != nil || v == nil {
		return false, err
	}
	rec, ok := record.ParseVariable(v.Description)
	return ok && rec.RunnerID == id, nil
}

// refsToResolve lists the projects and groups to look up: those of the shard's entries, and,
// with several shards, the paths of the other shards' variable owners of a kind the manifest
// names both by id and by path when this shard names such an owner by id, so that two entries
// in different shards cannot hide one variable behind two spellings. Nothing more is needed:
// a numeric id is its own answer (resolvedTarget), and this shard's own paths are looked up
// anyway, so one look-up per path of another shard is the whole cost, and none without mixing.
func refsToResolve(m *Manifest, entries []Entry, sh Shard) []nsKey {
	set := map[nsKey]bool{}
	add := func(kind spec.OwnerKind, ref string) {
		if ref != "" && kind != spec.OwnerInstance {
			set[nsKey{kind, ref}] = true
		}
	}
	for _, e := range entries {
		switch e.Spec.Runner.Type {
		case spec.ProjectType:
			add(spec.OwnerProject, e.Spec.Runner.ProjectRef)
		case spec.GroupType:
			add(spec.OwnerGroup, e.Spec.Runner.GroupRef)
		}
		add(e.Spec.Variable.Owner, e.Spec.Variable.OwnerRef)
	}
	if sh.Total > 1 {
		for _, kind := range mixedKinds(m) {
			if !slices.ContainsFunc(entries, func(e Entry) bool {
				_, isID := numericID(e.Spec.Variable.OwnerRef)
				return e.Spec.Variable.Owner == kind && isID
			}) {
				continue
			}
			for _, e := range m.Entries {
				if _, isID := numericID(e.Spec.Variable.OwnerRef); e.Spec.Variable.Owner == kind && !isID {
					add(kind, e.Spec.Variable.OwnerRef)
				}
			}
		}
	}
	out := make([]nsKey, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}

// ownerLists are variable owners and runner lists to read.
type ownerLists struct {
	owners []ownerKey
	lists  []listKey
}

// directLists are the variable owners and runner lists of the entries that name their projects
// and groups by numeric id: they can be read before any look-up has answered. Step 3 reads the
// others, and these again only if their keys turn out different.
func directLists(entries []Entry) ownerLists {
	var out ownerLists
	seenOwner, seenList := map[ownerKey]bool{}, map[listKey]bool{}
	id := numericID
	for _, e := range entries {
		r, v := e.Spec.Runner, e.Spec.Variable
		var l listKey
		ok := false
		switch r.Type {
		case spec.ProjectType:
			if n, isID := id(r.ProjectRef); isID {
				l, ok = listKey{spec.OwnerProject, n, r.Type}, true
			}
		case spec.GroupType:
			if n, isID := id(r.GroupRef); isID {
				l, ok = listKey{spec.OwnerGroup, n, r.Type}, true
			}
		}
		if ok && !seenList[l] {
			seenList[l] = true
			out.lists = append(out.lists, l)
		}
		if v.Owner != spec.OwnerProject && v.Owner != spec.OwnerGroup {
			continue
		}
		if n, isID := id(v.OwnerRef); isID && !seenOwner[ownerKey{v.Owner, n}] {
			seenOwner[ownerKey{v.Owner, n}] = true
			out.owners = append(out.owners, ownerKey{v.Owner, n})
		}
	}
	return out
}

// numericID reads a project or group written as its numeric id.
func numericID(ref string) (int64, bool) {
	n, err := strconv.ParseInt(ref, 10, 64)
	return n, err == nil && n > 0
}

// mixedKinds are the variable owner kinds the manifest names both by numeric id and by path.
func mixedKinds(m *Manifest) []spec.OwnerKind {
	ids, paths := map[spec.OwnerKind]bool{}, map[spec.OwnerKind]bool{}
	for _, e := range m.Entries {
		v := e.Spec.Variable
		if _, isID := numericID(v.OwnerRef); isID {
			ids[v.Owner] = true
		} else if v.OwnerRef != "" {
			paths[v.Owner] = true
		}
	}
	var out []spec.OwnerKind
	for _, k := range []spec.OwnerKind{spec.OwnerProject, spec.OwnerGroup} {
		if ids[k] && paths[k] {
			out = append(out, k)
		}
	}
	return out
}

// duplicates refuses two entries whose variables turn out to be one once ids and paths are
// resolved (project: 42 and project: platform/deploy).
func (p *Plan) duplicates(m *Manifest, shard []Entry) error {
	inShard := map[int]bool{}
	for _, e := range shard {
		inShard[e.Index] = true
	}
	first := map[string]Entry{}
	var msgs []string
	for _, e := range m.Entries {
		target, ok := p.resolvedTarget(e)
		if !ok {
			continue
		}
		prev, dup := first[target]
		if !dup {
			first[target] = e
			continue
		}
		if !inShard[e.Index] && !inShard[prev.Index] {
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%s:%d: %s stores its token in %s, which is the variable of %s (line %d) too once ids and paths are resolved: each runner needs its own variable",
			m.File, e.VariableLine, e.Name(), describeVariable(e.Spec.Variable), prev.Name(), prev.Line))
	}
	switch len(msgs) {
	case 0:
		return nil
	case 1:
		return fail.Usagef("%s; nothing was changed", msgs[0])
	}
	return fail.Usagef("%s has %d entries that share a variable; nothing was changed:\n%s", m.File, len(msgs), strings.Join(msgs, "\n"))
}

func (p *Plan) resolvedTarget(e Entry) (string, bool) {
	v := e.Spec.Variable
	if v.Owner == spec.OwnerInstance {
		return spec.Target(spec.OwnerInstance, 0, v.Key, spec.DefaultScope), true
	}
	if id, isID := numericID(v.OwnerRef); isID {
		// No look-up needed, and another shard's owner is not looked up.
		return spec.Target(v.Owner, id, v.Key, v.EnvironmentScope), true
	}
	ns, ok := p.snap.resolved(nsKey{v.Owner, v.OwnerRef})
	if !ok {
		return "", false
	}
	return spec.Target(v.Owner, ns.ID, v.Key, v.EnvironmentScope), true
}

// firstAuthError returns a 401 from the look-ups: with a refused token every entry would fail
// the same way, so the run stops with the client's own sentence and exit code.
func firstAuthError(s *snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]nsKey, 0, len(s.namespaces))
	for k := range s.namespaces {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ref < keys[j].ref })
	for _, k := range keys {
		if err := s.namespaces[k].err; err != nil && gitlab.StatusCode(err) == 401 {
			return err
		}
	}
	return nil
}

func runnerList(a gitlab.RunnerAttrs) listKey {
	switch a.Type {
	case spec.ProjectType:
		return listKey{spec.OwnerProject, a.ProjectID, a.Type}
	case spec.GroupType:
		return listKey{spec.OwnerGroup, a.GroupID, a.Type}
	}
	return listKey{spec.OwnerInstance, 0, spec.InstanceType}
}

func runnerOwnerAsWritten(r spec.Runner) string {
	switch r.Type {
	case spec.ProjectType:
		return "project " + r.ProjectRef
	case spec.GroupType:
		return "group " + r.GroupRef
	}
	return "the instance"
}

// variableName is "project platform/deploy variable RUNNER_TOKEN (scope *)" for a variable
// named by a marker.
func (p *Plan) variableName(ref gitlab.VarRef) string {
	if ref.Owner == spec.OwnerInstance {
		return "instance variable " + ref.Key
	}
	return fmt.Sprintf("%s variable %s (scope %s)", p.snap.ownerName(ref.Owner, ref.OwnerID), ref.Key, ref.Scope)
}

// variableName is "project platform/deploy variable RUNNER_TOKEN (scope *)".
func variableName(r lifecycle.Resolved) string { return r.VarName() }

func discardLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.PanicLevel)
	return l
}
