package cli

import (
	"io"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// DeleteCmd deletes the runner behind a variable and the variable.
type DeleteCmd struct {
	OwnerFlags
	VariableTargetFlags
	RunnerType string `name:"runner-type" enum:"instance_type,group_type,project_type," default:"" help:"Type of the runner, to also find runners marked for this variable whose token was never stored (default: from --project-id or --group-id)."`
	DryRun     bool   `name:"dry-run" help:"Make delete's reads and checks, print what it would delete, as apply --dry-run prints its plan, and change nothing."`
}

// Run implements the command.
func (c *DeleteCmd) Run(app *App) error {
	s, err := targetSpec(c.OwnerFlags, c.VariableTargetFlags)
	if err != nil {
		return err
	}
	if c.RunnerType != "" {
		s.Runner.Type = spec.RunnerType(c.RunnerType)
	}
	if err := s.Variable.Validate(); err != nil {
		return err
	}
	svc, err := app.Service()
	if err != nil {
		return err
	}
	f := dryFleet(app, svc)
	plan := f.NewPlan()
	r, err := svc.Resolve(app.Ctx, s)
	if err != nil {
		return err
	}
	if c.DryRun {
		p, err := svc.PlanDelete(app.Ctx, r)
		if err != nil {
			return err
		}
		plan.Items = deleteItems(r.VarName(), p)
		return printDryPlan(app, f, plan, "")
	}
	res, err := svc.Delete(app.Ctx, r)
	if err != nil {
		return err
	}
	return app.Printer().Print(res, func(w io.Writer) {
		switch res.Action {
		case lifecycle.ActionDeleted:
			if res.RunnerID != 0 {
				line(w, "deleted runner %d and %s variable %s (scope %s)", res.RunnerID, r.VarOwnerPath, r.Var.Key, r.Var.Scope)
			} else {
				line(w, "deleted %s variable %s (scope %s)", r.VarOwnerPath, r.Var.Key, r.Var.Scope)
			}
		default:
			line(w, "nothing to delete: %s variable %s does not exist (already deleted)", r.VarOwnerPath, r.Var.Key)
		}
		for _, id := range res.OrphansDeleted {
			line(w, "deleted runner %d: it was marked for this variable", id)
		}
		serverLine(w, res.Gitlab)
		noteLines(w, res.Notes)
	})
}
