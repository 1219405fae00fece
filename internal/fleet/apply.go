package fleet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/output"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/progress"
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
	// APICalls counts the calls made to the GitLab API, as the client counts them: a retried
	// call once, each page of a list once.
	APICalls int64   `json:"api_calls"`
	Seconds  float64 `json:"seconds"`
}

// Summarize counts the plan (and the results, once applied).
func (f *Fleet) Summarize(p *Plan, dryRun bool) Summary {
	s := Summary{DryRun: dryRun, Shard: p.Shard.String(), Concurrency: f.conc(), Planned: map[Action]int{},
		PruneSkipped: p.PruneSkipped, APICalls: f.calls() - p.calls, Seconds: f.now().Sub(p.started).Seconds()}
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

// Apply carries the plan out with at most Concurrency changes in flight. Each entry's
// lifecycle.Plan goes through lifecycle.Execute, so the order that makes a run safe to
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
	entryLog := progress.Quieter(f.Log)
	if len(work) == 0 {
		f.Log.Infof("nothing to apply: %s", upToDate(len(p.Items)))
		f.readBack(ctx, p)
		return
	}
	prog := progress.Start(f.progressOptions(), "apply", fmt.Sprintf("applying %s (%d up to date), %d at a time", output.Plural(len(work), "change", "changes"), len(p.Items)-len(work), f.conc()), len(work))
	defer prog.Finish()
	forEach(ctx, len(work), f.conc(), func(i int) {
		it := work[i]
		if it.Action == Delete {
			f.applyDelete(ctx, it)
		} else {
			f.applyEntry(ctx, it, entryLog)
		}
		if it.Result == ResultFailed {
			prog.Failed(p.itemName(it), it.Error)
		} else {
			prog.Done(p.itemName(it), it.Result)
		}
	})
	for _, it := range work {
		if it.Result == "" {
			it.Result, it.Error = ResultFailed, "not applied: the run's --timeout expired or it was interrupted first"
		}
	}
	f.readBack(ctx, p)
}

func (f *Fleet) applyEntry(ctx context.Context, it *Item, log *logrus.Logger) {
	svc := lifecycle.New(f.API, log.WithField("entry", it.Entry))
	svc.Now = f.now
	svc.BulkReadBack = true // readBack settles concurrent runs for the whole plan
	res, err := svc.Execute(ctx, it.resolved, it.plan)
	it.Orphans = res.OrphansDeleted
	it.Notes = res.Notes
	if err != nil {
		it.Result, it.Error = ResultFailed, err.Error()
		return
	}
	it.Result = res.Action
	it.RunnerID, it.PreviousRunnerID, it.TokenExpiresAt = res.RunnerID, res.PreviousRunnerID, res.TokenExpiresAt
	if len(res.Changes) > 0 {
		it.Changes, it.Diff = res.Changes, res.Diff
	}
}

// applyDelete removes a runner --prune found: first the variable that records it, if any,
// then the runner. Interrupted in between, the runner is still marked and no variable wants
// it, so the next --prune deletes it.
func (f *Fleet) applyDelete(ctx context.Context, it *Item) {
	if ref := it.prune.variable; ref != nil {
		if err := f.API.DeleteVariable(ctx, *ref); err != nil && !gitlab.IsNotFound(err) {
			it.Result, it.Error = ResultFailed, err.Error()
			return
		}
	}
	if err := f.API.DeleteRunner(ctx, it.RunnerID); err != nil && !gitlab.IsNotFound(err) {
		it.Result, it.Error = ResultFailed, err.Error()
		return
	}
	it.Result = lifecycle.ActionDeleted
	f.Log.WithField("runner_id", it.RunnerID).Infof("pruned runner %d (%s): %s", it.RunnerID, it.Owner, it.Reason)
}

// readBack is Ensure's last step, batched (Execute leaves it out under BulkReadBack): it lists the variables that got a new runner once
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
		vars, err = p.snap.listVariablesExpecting(ctx, o, len(byOwner[o]))
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
			derr = p.snap.api.DeleteRunner(ctx, mine)
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

// progressOptions are the caller's, with the fleet's log for the item lines by default.
func (f *Fleet) progressOptions() progress.Options {
	o := f.Progress
	if o.Log == nil {
		o.Log = f.Log
	}
	return o
}

// itemName is how a progress line names an item: the entry's file:line and variable, or the
// runner --prune deletes.
func (p *Plan) itemName(it *Item) string {
	if it.Entry == "" {
		return "runner " + idOrDash(it.RunnerID)
	}
	return p.where(it) + " " + it.Variable
}

// upToDate is "the 1 entry is up to date" or "all 3 entries are up to date".
func upToDate(n int) string {
	if n == 1 {
		return "the 1 entry is up to date"
	}
	return fmt.Sprintf("all %d entries are up to date", n)
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
	msg := fmt.Sprintf("%s finished in %.1fs: %s; %s (%.1f/s), %d API calls", what, s.Seconds, strings.Join(parts, ", "), output.Plural(s.Entries, "entry", "entries"), rate, s.APICalls)
	if s.Failed > 0 {
		entry.Error(msg)
		return
	}
	entry.Info(msg)
}
