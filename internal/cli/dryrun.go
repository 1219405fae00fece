package cli

import (
	"fmt"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fleet"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
)

// rotateItem is one row of rotate --dry-run's plan: what Rotate decided after its reads.
func rotateItem(variable string, res lifecycle.Result, errMsg string) *fleet.Item {
	it := &fleet.Item{Entry: "rotate", RunnerType: res.RunnerType, RunnerID: res.RunnerID, Variable: variable,
		VariableKey: res.VariableKey, Reason: res.Reason, Notes: res.Notes, TokenExpiresAt: res.TokenExpiresAt}
	switch {
	case errMsg != "":
		it.Action, it.Reason = fleet.Fail, errMsg
	case res.Action == lifecycle.ActionSkipped:
		it.Action = fleet.Skip
	case res.Action == lifecycle.ActionWouldRecreate:
		// The table shows "new" for the runner, as apply's replace does.
		it.Action, it.PreviousRunnerID = fleet.Replace, res.RunnerID
		it.Reason = fmt.Sprintf("would replace runner %d: %s", res.RunnerID, res.Reason)
	default:
		it.Action = fleet.Rotate
	}
	return it
}

// deleteItems are delete --dry-run's rows: the recorded runner with its variable (or the
// variable alone), then each other runner marked for the variable.
func deleteItems(variable string, p lifecycle.DeletePlan) []*fleet.Item {
	res := p.Result
	base := fleet.Item{Entry: "delete", Variable: variable, VariableKey: res.VariableKey, Notes: res.Notes}
	var items []*fleet.Item
	switch {
	case p.Runner != 0:
		it := base
		it.Action, it.RunnerID, it.RunnerType = fleet.Delete, p.Runner, res.RunnerType
		it.Reason = fmt.Sprintf("deletes runner %d and the variable that records it", p.Runner)
		items = append(items, &it)
	case p.Variable:
		it := base
		it.Action, it.Reason = fleet.Delete, "deletes the variable"
		if res.RunnerID != 0 {
			it.Reason += fmt.Sprintf(" (runner %d was already gone)", res.RunnerID)
		}
		items = append(items, &it)
	case len(p.Orphans) == 0:
		it := base
		it.Action, it.Reason = fleet.Unchanged, "nothing to delete: the variable does not exist and no runner is marked for it"
		items = append(items, &it)
	}
	for _, id := range p.Orphans {
		items = append(items, &fleet.Item{Action: fleet.Delete, RunnerID: id, Variable: variable, VariableKey: res.VariableKey,
			Reason: fmt.Sprintf("runner %d is marked for this variable", id)})
	}
	return items
}

// dryFleet is the Fleet whose Summarize counts a rotate or delete --dry-run's API calls.
func dryFleet(app *App, svc *lifecycle.Service) *fleet.Fleet {
	return &fleet.Fleet{API: svc.API, Log: app.Log, Concurrency: 1, Progress: app.progressOptions()}
}
