package fleet

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
)

// WritePlan writes the plan as a table, one line per entry and per runner --prune deletes.
func (p *Plan) WritePlan(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENTRY\tACTION\tRUNNER\tVARIABLE\tDETAIL")
	for _, it := range p.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.where(it), it.Action, runnerCell(it), it.Variable, planDetail(it))
	}
	_ = tw.Flush()
	if p.PruneSkipped != "" {
		fmt.Fprintf(w, "prune skipped: %s\n", p.PruneSkipped)
	}
}

// WriteResults writes what apply did: a line for every item that was not already up to
// date, then the counts.
func (p *Plan) WriteResults(w io.Writer, s Summary) {
	changed := false
	for _, it := range p.Items {
		changed = changed || it.Result != "unchanged" || len(it.Orphans) > 0
	}
	if !changed {
		fmt.Fprintln(w, "nothing was written: every runner and variable is up to date")
		fmt.Fprintln(w, countsLine(s))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENTRY\tRESULT\tRUNNER\tVARIABLE\tDETAIL")
	for _, it := range p.Items {
		if it.Result == "unchanged" && len(it.Orphans) == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.where(it), it.Result, idOrDash(it.RunnerID), it.Variable, resultDetail(it))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, countsLine(s))
}

// WriteSummary writes the counts of a dry run.
func (p *Plan) WriteSummary(w io.Writer, s Summary) {
	fmt.Fprintln(w, countsLine(s))
}

// countsLine names the shard only when there are several: "plan for shard 1/1" only puzzles
// the reader of an unsharded apply or of create --dry-run.
func countsLine(s Summary) string {
	of := ""
	if s.Shard != All.String() {
		of = " for shard " + s.Shard
	}
	if s.DryRun {
		rot := ""
		if n, m := s.Planned[Rotate], s.Planned[Skip]; n+m > 0 {
			rot = fmt.Sprintf(", %d to rotate, %d to skip", n, m)
		}
		return fmt.Sprintf("plan%s: %d to create, %d to update, %d to replace, %d unchanged, %d to delete%s, %d failed; dry run: nothing was changed",
			of, s.Planned[Create], s.Planned[Update], s.Planned[Replace], s.Planned[Unchanged], s.Planned[Delete], rot, s.Planned[Fail])
	}
	r := s.Results
	line := fmt.Sprintf("applied%s: %d created, %d updated, %d replaced, %d unchanged, %d deleted, %d failed",
		of, r["created"], r["updated"], r["replaced"], r["unchanged"], r["deleted"], r[ResultFailed])
	if n := r[ResultSuperseded]; n > 0 {
		line += fmt.Sprintf(", %d superseded by a concurrent run", n)
	}
	return line + fmt.Sprintf(" (%.1fs, %d API calls)", s.Seconds, s.APICalls)
}

func (p *Plan) where(it *Item) string {
	switch {
	case it.Line != 0:
		return fmt.Sprintf("%s:%d", p.File, it.Line)
	case it.Entry != "":
		return it.Entry // an entry made from flags (FromSpec)
	}
	return "-"
}

func runnerCell(it *Item) string {
	switch it.Action {
	case Create:
		return "new"
	case Replace:
		return "new"
	case Fail:
		return "-"
	}
	return idOrDash(it.RunnerID)
}

func idOrDash(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 10)
}

func planDetail(it *Item) string {
	var parts []string
	switch it.Action {
	case Create:
		parts = append(parts, fmt.Sprintf("%s runner for %s", it.RunnerType, it.Owner))
	case Replace:
		parts = append(parts, it.Reason)
	case Update:
		parts = append(parts, "changes: "+strings.Join(lifecycle.DescribeChanges(it.Changes, it.Diff), ", "))
	case Delete, Fail:
		parts = append(parts, it.Reason)
	case Unchanged:
		if it.Reason != "" {
			parts = append(parts, it.Reason)
		}
	case Rotate:
		parts = append(parts, "would rotate: "+it.Reason)
	case Skip:
		parts = append(parts, "would skip: "+it.Reason)
	}
	if len(it.Orphans) > 0 {
		parts = append(parts, "deletes orphan "+runnerIDs(it.Orphans)+" (created for this variable, token never stored)")
	}
	return strings.Join(parts, "; ")
}

func resultDetail(it *Item) string {
	if it.Error != "" {
		return it.Error
	}
	var parts []string
	switch it.Result {
	case "updated":
		parts = append(parts, "changed: "+strings.Join(lifecycle.DescribeChanges(it.Changes, it.Diff), ", "))
	case "replaced":
		parts = append(parts, fmt.Sprintf("replaces runner %d", it.PreviousRunnerID))
	case "deleted":
		parts = append(parts, it.Reason)
	}
	if len(it.Orphans) > 0 && it.Action != Delete {
		parts = append(parts, "deleted orphan "+runnerIDs(it.Orphans))
	}
	parts = append(parts, it.Notes...)
	return strings.Join(parts, "; ")
}

func runnerIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	if len(ids) == 1 {
		return "runner " + s[0]
	}
	return "runners " + strings.Join(s, ", ")
}
