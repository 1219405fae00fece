package lifecycle

import (
	"fmt"
	"slices"
	"strings"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// Plan is what Ensure does for one Resolved, decided from a State without any request. Its
// steps run in the order of the fields (Ensure's doc comment says why that order is safe).
type Plan struct {
	// Err refuses the whole plan: nothing is written.
	Err error
	// Result is what the plan reports before it runs: the action, the runner kept, the
	// changes and notes. Execute completes it (a new runner's id, deleted orphans).
	Result Result
	// UpdateRunner updates the recorded runner in place (PUT); nil when it matches.
	UpdateRunner *RunnerUpdate
	// UpdateVariable fixes the variable's flags; the zero write changes nothing.
	UpdateVariable gitlab.VariableWrite
	// RepairRotation resets the recorded runner's token and stores it with UpdateVariable:
	// an interrupted rotation left a stale value.
	RepairRotation bool
	// DeleteOrphans are marked runners whose token the variable does not hold.
	DeleteOrphans []int64
	// Create creates a marked runner and stores its token; nil when the recorded one is kept.
	Create *CreateStep
}

// RunnerUpdate is an in-place update of a runner.
type RunnerUpdate struct {
	ID    int64
	Attrs gitlab.RunnerAttrs // the maintenance note includes the runner's marker
}

// CreateStep creates a runner and stores its token.
type CreateStep struct {
	// Existing is the variable to store into; nil creates it.
	Existing *gitlab.Variable
	// Replaces is a runner of another type or owner that the new one replaces: it is
	// deleted once the new token is stored.
	Replaces int64
	// Missing is set when the recorded runner no longer exists.
	Missing bool
}

// Writes reports whether the plan changes anything on GitLab.
func (p Plan) Writes() bool {
	return p.Err == nil && (p.UpdateRunner != nil || p.UpdateVariable != (gitlab.VariableWrite{}) ||
		p.RepairRotation || len(p.DeleteOrphans) > 0 || p.Create != nil)
}

// Decide turns what Observe read into the steps that make GitLab match r. It makes no request.
func Decide(r Resolved, st State) Plan {
	p := Plan{Result: newResult(r, "")}
	if r.Var.Owner == spec.OwnerInstance && r.Spec.Variable.Hidden {
		p.Result.Notes = append(p.Result.Notes, instanceNote)
	}
	v := st.Variable
	if v != nil {
		if !st.RecordOK {
			p.Err = notManaged(r.VarName())
			return p
		}
		if err := checkVisibility(r, v); err != nil {
			p.Err = err
			return p
		}
	}
	c := &CreateStep{Existing: v}
	if v != nil {
		switch err := st.RunnerErr; {
		case err == nil && sameOwner(r, st.Runner):
			return decideConverge(r, st, p)
		case err == nil:
			// The runner type or owner changed: GitLab cannot move a runner, so it is replaced,
			// and the old one deleted once the new token is stored.
			p.Result.PreviousRunnerID = st.Record.RunnerID
			p.Result.Changes = append(p.Result.Changes, fmt.Sprintf("runner type or owner (was %s)", st.Runner.Type))
			c.Replaces = st.Record.RunnerID
		case gitlab.IsNotFound(err):
			p.Result.PreviousRunnerID = st.Record.RunnerID
			c.Missing = true
		default:
			p.Err = err
			return p
		}
	}
	if st.MarkedErr != nil {
		p.Err = st.MarkedErr
		return p
	}
	p.DeleteOrphans = st.Marked
	p.Create = c
	p.Result.Action = ActionCreated
	if v != nil {
		p.Result.Action = ActionReplaced
	}
	return p
}

// decideConverge plans the in-place update of a kept runner and its variable; it writes
// nothing when both already match.
func decideConverge(r Resolved, st State, p Plan) Plan {
	runner, v, rec := st.Runner, st.Variable, st.Record
	res := &p.Result
	res.RunnerID = runner.ID
	res.TokenExpiresAt = rec.TokenExpiresAt
	// recordedRunner accepted it, so it carries the marker for this variable.
	userNote, marker, _ := record.ParseNote(runner.MaintenanceNote)
	res.Diff = runnerChanges(r.Attrs, userNote, runner)
	var changes []string
	for _, d := range res.Diff {
		changes = append(changes, d.Attribute)
	}
	if len(changes) > 0 {
		want := r.Attrs
		want.MaintenanceNote = record.ComposeNote(r.Attrs.MaintenanceNote, marker)
		p.UpdateRunner = &RunnerUpdate{ID: runner.ID, Attrs: want}
	}
	w := &p.UpdateVariable
	if !v.Masked && !v.Hidden {
		// Someone unmasked it: a token must never show in job logs. Allowed, as it is not hidden.
		w.Masked, w.Raw = new(true), new(false)
		changes = append(changes, "variable masked")
	}
	if v.Protected != r.Spec.Variable.Protected {
		w.Protected = &r.Spec.Variable.Protected
		changes = append(changes, "variable protected")
	}
	if v.Type != r.Spec.Variable.Type {
		w.Type = &r.Spec.Variable.Type
		changes = append(changes, "variable type")
	}
	if rec.RotationPending {
		// A rotation reset the token but died before storing the new one: the stored value is
		// invalid. Repair by rotating now.
		p.RepairRotation = true
		changes = append(changes, "token (an interrupted rotation left a stale value)")
	}
	res.Changes = changes
	res.Action = ActionUnchanged
	if len(changes) > 0 {
		res.Action = ActionUpdated
	}
	if st.MarkedErr != nil {
		p.Err = st.MarkedErr
		return p
	}
	p.DeleteOrphans = st.Marked
	return p
}

// sameOwner reports whether the runner is of r's type and owner, so it can be kept.
func sameOwner(r Resolved, runner *gitlab.Runner) bool {
	if runner.Type != string(r.Attrs.Type) {
		return false
	}
	switch r.Attrs.Type {
	case spec.ProjectType:
		// GitLab lists a runner's projects in no particular order.
		return slices.Contains(runner.ProjectIDs, r.Attrs.ProjectID)
	case spec.GroupType:
		return slices.Contains(runner.GroupIDs, r.Attrs.GroupID)
	}
	return true
}

// runnerChanges lists the attributes that differ between the spec and GitLab, with the value
// GitLab has and the one the update sets.
func runnerChanges(a gitlab.RunnerAttrs, userNote string, r *gitlab.Runner) []Change {
	var c []Change
	add := func(cond bool, name, old, new string) {
		if cond {
			c = append(c, Change{Attribute: name, Old: old, New: new})
		}
	}
	wantNote := strings.TrimRight(a.MaintenanceNote, "\n ")
	add(r.Description != a.Description, "description", quoted(r.Description), quoted(a.Description))
	add(!sameTags(r.TagList, a.TagList), "tag_list", tags(r.TagList), tags(a.TagList))
	add(r.RunUntagged != a.RunUntagged, "run_untagged", fmt.Sprint(r.RunUntagged), fmt.Sprint(a.RunUntagged))
	add(r.Locked != a.Locked, "locked", fmt.Sprint(r.Locked), fmt.Sprint(a.Locked))
	add(r.Paused != a.Paused, "paused", fmt.Sprint(r.Paused), fmt.Sprint(a.Paused))
	add(r.AccessLevel != a.AccessLevel, "access_level", r.AccessLevel, a.AccessLevel)
	add(r.MaximumTimeout != a.MaximumTimeout, "maximum_timeout", timeout(r.MaximumTimeout), timeout(a.MaximumTimeout))
	add(userNote != wantNote, "maintenance_note", quoted(userNote), quoted(wantNote))
	return c
}

// Change is one runner attribute an update sets: the value GitLab has and the new one. A key
// left out of a manifest resets its attribute, which shows here (maximum_timeout 3600 → none).
type Change struct {
	Attribute string `json:"attribute"`
	Old       string `json:"old"`
	New       string `json:"new"`
}

func (c Change) String() string { return c.Attribute + " " + c.Old + " → " + c.New }

// DescribeChanges is changes (attribute names and variable fixes) with each runner attribute
// shown as old → new where diff has it.
func DescribeChanges(changes []string, diff []Change) []string {
	out := make([]string, 0, len(changes))
	for _, name := range changes {
		s := name
		for _, d := range diff {
			if d.Attribute == name {
				s = d.String()
			}
		}
		out = append(out, s)
	}
	return out
}

func quoted(s string) string {
	if s == "" {
		return "none"
	}
	if r := []rune(s); len(r) > 40 {
		s = string(r[:39]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

func tags(t []string) string {
	if len(t) == 0 {
		return "none"
	}
	return strings.Join(t, ",")
}

func timeout(seconds int64) string {
	if seconds == 0 {
		return "none"
	}
	return fmt.Sprint(seconds)
}
