package fleet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
)

// Summary counts a plan and, after apply, its results.
type Summary struct {
	DryRun      bool           `json:"dry_run"`
	Shard       string         `json:"shard"`
	Entries     int            `json:"entries"`
	Concurrency int            `json:"concurrency"`
	Planned     map[Action]int `json:"planned"`
	// Results counts outcomes by Item.Result (absent in a dry run).
	Results        map[string]int `json:"results,omitempty"`
	OrphansDeleted int            `json:"orphans_deleted,omitempty"`
	Failed         int            `json:"failed"`
	PruneSkipped   string         `json:"prune_skipped,omitempty"`
	// APICalls counts the calls made to the GitLab API; a retried call, or a list read in
	// several pages, counts once.
	APICalls int64   `json:"api_calls"`
	Seconds  float64 `json:"seconds"`
}

// Summarize counts the plan (and the results, once applied).
func (f *Fleet) Summarize(p *Plan, dryRun bool) Summary {
	s := Summary{DryRun: dryRun, Shard: p.Shard.String(), Concurrency: f.conc(), Planned: map[Action]int{},
		PruneSkipped: p.PruneSkipped, APICalls: p.snap.calls.Load(), Seconds: f.now().Sub(p.started).Seconds()}
	for _, a := range []Action{Create, Update, Replace, Unchanged, Delete, Fail} {
		s.Planned[a] = 0
	}
	if !dryRun {
		s.Results = map[string]int{}
	}
	for _, it := range p.Items {
		if it.Entry != "" {
			s.Entries++
		}
		s.Planned[it.Action]++
		if dryRun {
			if it.Action == Fail {
				s.Failed++
			}
			continue
		}
		s.Results[it.Result]++
		if it.Result == ResultFailed {
			s.Failed++
		}
		if it.Action != Delete {
			s.OrphansDeleted += len(it.Orphans)
		}
	}
	return s
}

// Apply carries the plan out with at most Concurrency changes in flight. Each entry goes
// through lifecycle.Ensure (over the plan's snapshot), so the order that makes a run safe to
// interrupt is Ensure's: the runner is created with its marker, its token stored with the
// runner's id in the variable's description, and the runner deleted again if storing fails.
// One failing entry does not stop the others. Every item gets a Result.
func (f *Fleet) Apply(ctx context.Context, p *Plan) {
	var work []*Item
	for _, it := range p.Items {
		switch {
		case it.Action == Fail:
			it.Result, it.Error = ResultFailed, it.Reason
		case it.needsWork():
			work = append(work, it)
		default:
			it.Result = lifecycle.ActionUnchanged
		}
	}
	entryLog := quieter(f.Log)
	prog := newProgress(f.Log, len(work), f.now)
	if len(work) == 0 {
		f.Log.Infof("nothing to apply: all %s up to date", plural(len(p.Items), "entry is", "entries are"))
	} else {
		f.Log.Infof("applying %s (%d up to date), %d at a time", plural(len(work), "change", "changes"), len(p.Items)-len(work), f.conc())
	}
	forEach(ctx, len(work), f.conc(), func(i int) {
		it := work[i]
		if it.Action == Delete {
			f.applyDelete(ctx, p.snap, it)
		} else {
			f.applyEntry(ctx, p.snap, it, entryLog)
		}
		prog.step()
	})
	for _, it := range work {
		if it.Result == "" {
			it.Result, it.Error = ResultFailed, "not applied: the run's --timeout expired or it was interrupted first"
		}
	}
	f.readBack(ctx, p)
}

func (f *Fleet) applyEntry(ctx context.Context, s *snapshot, it *Item, log *logrus.Logger) {
	v := &view{s: s, target: it.target, desc: it.desc}
	svc := lifecycle.New(v, log.WithField("entry", it.Entry))
	svc.Now = f.now
	res, err := svc.Ensure(ctx, it.resolved)
	it.Orphans = res.OrphansDeleted
	it.Notes = res.Notes
	if err != nil {
		it.Result, it.Error = ResultFailed, err.Error()
		return
	}
	it.Result = res.Action
	it.RunnerID, it.PreviousRunnerID, it.TokenExpiresAt = res.RunnerID, res.PreviousRunnerID, res.TokenExpiresAt
	if len(res.Changes) > 0 {
		it.Changes = res.Changes
	}
}

// applyDelete removes a runner --prune found: first the variable that records it, if any,
// then the runner. Interrupted in between, the runner is still marked and no variable wants
// it, so the next --prune deletes it.
func (f *Fleet) applyDelete(ctx context.Context, s *snapshot, it *Item) {
	v := &view{s: s}
	if ref := it.prune.variable; ref != nil {
		if err := v.DeleteVariable(ctx, *ref); err != nil && !gitlab.IsNotFound(err) {
			it.Result, it.Error = ResultFailed, err.Error()
			return
		}
	}
	if err := v.DeleteRunner(ctx, it.RunnerID); err != nil && !gitlab.IsNotFound(err) {
		it.Result, it.Error = ResultFailed, err.Error()
		return
	}
	it.Result = lifecycle.ActionDeleted
	f.Log.WithField("runner_id", it.RunnerID).Infof("pruned runner %d (%s): %s", it.RunnerID, it.Owner, it.Reason)
}

// readBack is Ensure's last step, batched: it lists the variables that got a new runner once
// more and checks that each still records that runner. When a concurrent run stored its own
// runner since, the run that lost deletes the runner it created, so that whichever run wrote
// last keeps its runner and no runner is left whose token is stored nowhere.
func (f *Fleet) readBack(ctx context.Context, p *Plan) {
	byOwner := map[ownerKey][]*Item{}
	var owners []ownerKey
	for _, it := range p.Items {
		if it.Result != lifecycle.ActionCreated && it.Result != lifecycle.ActionReplaced {
			continue
		}
		o := ownerKey{it.resolved.Var.Owner, it.resolved.Var.OwnerID}
		if _, ok := byOwner[o]; !ok {
			owners = append(owners, o)
		}
		byOwner[o] = append(byOwner[o], it)
	}
	var mu sync.Mutex
	forEach(ctx, len(owners), f.conc(), func(i int) {
		o := owners[i]
		var vars []gitlab.Variable
		var err error
		p.snap.call(ctx, func() { vars, err = p.snap.api.ListVariables(ctx, o.kind, o.id) })
		if err != nil {
			f.Log.Warnf("could not read the variables of %s back (%v); a concurrent run, if there was one, is sorted out by the next run", p.snap.ownerName(o.kind, o.id), err)
			return
		}
		now := map[varKey]gitlab.Variable{}
		for _, v := range vars {
			now[varKey{v.Key, scopeOf(o.kind, v.Scope)}] = v
		}
		for _, it := range byOwner[o] {
			ref := it.resolved.Var
			cur, exists := now[varKey{ref.Key, scopeOf(ref.Owner, ref.Scope)}]
			rec, managed := record.ParseVariable(cur.Description)
			if exists && managed && rec.RunnerID == it.RunnerID {
				continue
			}
			mine := it.RunnerID
			var derr error
			p.snap.call(ctx, func() { derr = p.snap.api.DeleteRunner(ctx, mine) })
			mu.Lock()
			switch {
			case exists && managed:
				it.Result = ResultSuperseded
				it.Notes = append(it.Notes, fmt.Sprintf("a concurrent run stored runner %d in the variable; runner %d created by this run was deleted again", rec.RunnerID, mine))
				it.RunnerID = rec.RunnerID
			default:
				it.Result = ResultFailed
				it.Error = fmt.Sprintf("%s was deleted or overwritten by someone else during the run; runner %d created by this run was deleted again: run apply again", ref, mine)
			}
			if derr != nil && !gitlab.IsNotFound(derr) {
				it.Notes = append(it.Notes, fmt.Sprintf("deleting runner %d failed (%v); it is marked, so the next run with the same spec (or runner-bootstrap prune) deletes it", mine, derr))
			}
			mu.Unlock()
		}
	})
}

// quieter is the logger Ensure writes to during apply: its per-runner info lines ("created
// runner …") would flood a log for a thousand runners, so they show at debug level only;
// warnings (a recorded runner gone, an orphan deleted) always show. Output and formatter are
// the program's, so the same redaction applies.
func quieter(l *logrus.Logger) *logrus.Logger {
	q := logrus.New()
	q.SetOutput(l.Out)
	q.SetFormatter(l.Formatter)
	q.ReplaceHooks(l.Hooks)
	lvl := logrus.WarnLevel
	if l.IsLevelEnabled(logrus.DebugLevel) || !l.IsLevelEnabled(logrus.WarnLevel) {
		lvl = l.GetLevel()
	}
	q.SetLevel(lvl)
	return q
}

// progress logs done/total, the rate and an ETA: at most once a second, when another tenth of
// the work is done or ten seconds have passed since the last line.
type progress struct {
	log   *logrus.Logger
	now   func() time.Time
	total int

	mu          sync.Mutex
	done        int
	start, last time.Time
	lastTenth   int
}

func newProgress(log *logrus.Logger, total int, now func() time.Time) *progress {
	t := now()
	return &progress{log: log, now: now, total: total, start: t, last: t}
}

func (p *progress) step() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if p.done >= p.total {
		return // the summary line follows
	}
	t := p.now()
	tenth := p.done * 10 / p.total
	since := t.Sub(p.last)
	if since < time.Second || (tenth == p.lastTenth && since < 10*time.Second) {
		return
	}
	p.last, p.lastTenth = t, tenth
	elapsed := t.Sub(p.start).Seconds()
	rate := float64(p.done) / elapsed
	eta := time.Duration(float64(p.total-p.done) / rate * float64(time.Second)).Round(time.Second)
	p.log.WithField("progress", fmt.Sprintf("%d/%d", p.done, p.total)).
		Infof("applied %d of %d changes (%d%%), %.1f/s, about %s left", p.done, p.total, p.done*100/p.total, rate, eta)
}

// LogSummary writes the final line to the log.
func (f *Fleet) LogSummary(s Summary) {
	var parts []string
	if s.DryRun {
		for _, a := range []Action{Create, Update, Replace, Unchanged, Delete, Fail} {
			parts = append(parts, fmt.Sprintf("%d %s", s.Planned[a], a))
		}
	} else {
		keys := make([]string, 0, len(s.Results))
		for k := range s.Results {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%d %s", s.Results[k], k))
		}
	}
	what := "apply"
	if s.DryRun {
		what = "plan (dry run)"
	}
	rate := 0.0
	if s.Seconds > 0 {
		rate = float64(s.Entries) / s.Seconds
	}
	entry := f.Log.WithField("shard", s.Shard)
	msg := fmt.Sprintf("%s finished in %.1fs: %s; %d entries (%.1f/s), %d API calls", what, s.Seconds, strings.Join(parts, ", "), s.Entries, rate, s.APICalls)
	if s.Failed > 0 {
		entry.Error(msg)
		return
	}
	entry.Info(msg)
}
