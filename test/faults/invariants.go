// Package faults checks that runner-bootstrap keeps its promises whatever GitLab or the network
// does. This file holds the invariants on the fake GitLab's state, shared with test/e2e; the
// fault-injection matrix that drives the built binary through every API call lives in the
// package's tests.
package faults

import (
	"fmt"
	"regexp"
	"strings"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// Target is the variable one spec stores its runner's token in, as the fake names it.
type Target struct {
	Owner   string // project, group or instance
	OwnerID int64
	Key     string
	Scope   string // "*" for instance variables
}

// Marker is the target as the tool writes it into the maintenance note of a runner it creates.
func (t Target) Marker() string {
	return spec.Target(spec.OwnerKind(t.Owner), t.OwnerID, t.Key, t.Scope)
}

func (t Target) String() string { return t.Marker() }

// Converged lists what is wrong with st for a target that a successful create or rotate left
// behind: the variable exists, is managed, and records a runner that exists and whose current
// token is the variable's value; exactly one runner is marked for the target; and no marked
// runner is left that no managed variable references.
func Converged(st gitlabfake.State, t Target) []string {
	var problems []string
	v, ok := variable(st, t)
	if !ok {
		return append(problems, fmt.Sprintf("variable %s does not exist", t))
	}
	rec, ok := record.ParseVariable(v.Description)
	if !ok {
		return append(problems, fmt.Sprintf("variable %s has no runner record in its description %q", t, v.Description))
	}
	if rec.RotationPending {
		problems = append(problems, fmt.Sprintf("variable %s is still marked rotation_pending", t))
	}
	r, ok := runner(st, rec.RunnerID)
	switch {
	case !ok:
		problems = append(problems, fmt.Sprintf("variable %s records runner %d, which does not exist", t, rec.RunnerID))
	case r.Token != v.Value:
		problems = append(problems, fmt.Sprintf("variable %s does not hold runner %d's current token", t, rec.RunnerID))
	}
	if !v.Masked {
		problems = append(problems, fmt.Sprintf("variable %s is not masked", t))
	}
	marked := MarkedFor(st, t)
	if len(marked) != 1 || marked[0] != rec.RunnerID {
		problems = append(problems, fmt.Sprintf("runners marked for %s: %v, want exactly [%d]", t, marked, rec.RunnerID))
	}
	return append(problems, Orphans(st)...)
}

// Gone lists what is left of a target after a successful delete: the variable and every
// runner marked for it must be gone, and no marked runner may be left unreferenced.
func Gone(st gitlabfake.State, t Target) []string {
	var problems []string
	if _, ok := variable(st, t); ok {
		problems = append(problems, fmt.Sprintf("variable %s still exists", t))
	}
	if m := MarkedFor(st, t); len(m) > 0 {
		problems = append(problems, fmt.Sprintf("runners still marked for %s: %v", t, m))
	}
	return append(problems, Orphans(st)...)
}

// MarkedFor returns the ids of the runners whose maintenance note carries the tool's marker
// for t.
func MarkedFor(st gitlabfake.State, t Target) []int64 {
	var ids []int64
	for _, r := range st.Runners {
		if _, m, ok := record.ParseNote(r.MaintenanceNote); ok && m.Target == t.Marker() {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// Orphans lists runners that carry the tool's marker but that no managed variable records:
// runners whose token is stored nowhere.
func Orphans(st gitlabfake.State) []string {
	referenced := map[int64]bool{}
	for _, v := range st.Variables {
		if rec, ok := record.ParseVariable(v.Description); ok {
			referenced[rec.RunnerID] = true
		}
	}
	var problems []string
	for _, r := range st.Runners {
		if !strings.Contains(r.MaintenanceNote, record.NoteMarker) || referenced[r.ID] {
			continue
		}
		problems = append(problems, fmt.Sprintf("runner %d carries the tool's marker but no variable references it (note %q)", r.ID, r.MaintenanceNote))
	}
	return problems
}

// TokenShape matches runner authentication, personal access and legacy registration tokens.
var TokenShape = regexp.MustCompile(`glrt-[A-Za-z0-9_.\-]{6,}|glpat-[A-Za-z0-9_\-]{6,}|GR1348941[A-Za-z0-9_\-]{6,}`)

// Secrets collects every token value in st: runner tokens and variable values.
func Secrets(st gitlabfake.State) []string {
	var out []string
	for _, r := range st.Runners {
		out = append(out, r.Token)
	}
	for _, v := range st.Variables {
		out = append(out, v.Value)
	}
	return out
}

// Leaks lists the token shapes and the known secret values (8 characters or more) found in
// out, naming them by position only so that a failure message leaks nothing either.
func Leaks(out string, secrets []string) []string {
	var problems []string
	for _, loc := range TokenShape.FindAllStringIndex(out, -1) {
		problems = append(problems, fmt.Sprintf("token-shaped string at byte %d (%q…)", loc[0], out[loc[0]:loc[0]+5]))
	}
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) < 8 || seen[s] {
			continue
		}
		seen[s] = true
		if i := strings.Index(out, s); i >= 0 {
			problems = append(problems, fmt.Sprintf("a known secret value at byte %d", i))
		}
	}
	return problems
}

func variable(st gitlabfake.State, t Target) (gitlabfake.Variable, bool) {
	for _, v := range st.Variables {
		if v.Owner == t.Owner && v.OwnerID == t.OwnerID && v.Key == t.Key && (t.Owner == "instance" || v.EnvironmentScope == t.Scope) {
			return v, true
		}
	}
	return gitlabfake.Variable{}, false
}

func runner(st gitlabfake.State, id int64) (gitlabfake.Runner, bool) {
	for _, r := range st.Runners {
		if r.ID == id {
			return r, true
		}
	}
	return gitlabfake.Runner{}, false
}
