package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/output"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/progress"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// runAll rotates every managed variable of an owner, concurrently, with a summary table.
func (c *RotateCmd) runAll(app *App) error {
	if c.UseRunnerToken {
		return fail.Usagef("--use-runner-token reads one token from the job's environment and cannot go with --all")
	}
	if c.Concurrency < 1 || c.Concurrency > 32 {
		return fail.Usagef("--concurrency %d is out of range: expected 1 to 32", c.Concurrency)
	}
	if countSet(c.ProjectID != "", c.GroupID != "", c.VariableInstance) != 1 {
		return fail.Usagef("rotate --all needs exactly one of --project-id, --group-id or --variable-instance: where to look for managed variables")
	}
	if c.IncludeSubgroups && c.GroupID == "" {
		return fail.Usagef("--include-subgroups needs --group-id")
	}
	client, err := app.Client()
	if err != nil {
		return err
	}
	client.ShareBudget(1, c.Concurrency)
	sc := lifecycle.Scope{Kind: spec.OwnerInstance, IncludeSubgroups: c.IncludeSubgroups}
	switch {
	case c.ProjectID != "":
		sc.Kind, sc.Ref = spec.OwnerProject, c.ProjectID
	case c.GroupID != "":
		sc.Kind, sc.Ref = spec.OwnerGroup, c.GroupID
	}
	owners, err := lifecycle.Owners(app.Ctx, client, client, sc)
	if err != nil {
		return err
	}
	svc := lifecycle.New(client, progress.Quieter(app.Log))
	f := dryFleet(app, svc)
	f.Concurrency = c.Concurrency
	plan := f.NewPlan()
	var prog *progress.Task
	o := lifecycle.RotateOptions{IfExpiringWithin: c.IfExpiringWithin.D(), RequireSingleManager: c.RequireSingle, DryRun: c.DryRun}
	out, err := svc.RotateScope(app.Ctx, owners, c.IncludeSubgroups, o, c.Concurrency,
		func(n int) {
			verb := "rotating"
			if c.DryRun {
				verb = "planning the rotation of"
			}
			prog = app.Progress("rotate_all", fmt.Sprintf("%s %s in %s, %d at a time", verb, output.Plural(n, "managed variable", "managed variables"), output.Plural(len(owners), "owner", "owners"), c.Concurrency), n)
		},
		func(it lifecycle.BulkItem) {
			if it.Error != "" {
				prog.Failed(it.Variable, it.Error)
			} else {
				prog.Done(it.Variable, it.Action)
			}
		})
	if err != nil {
		return err
	}
	prog.Finish()
	items := out.Items
	if c.DryRun {
		for _, it := range items {
			plan.Items = append(plan.Items, rotateItem(it.Variable, it.Result, it.Error))
		}
		return printDryPlan(app, f, plan, "")
	}
	if err := app.Printer().Print(out, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VARIABLE\tRUNNER\tRESULT\tEXPIRES\tDETAIL")
		for _, it := range items {
			detail := it.Reason
			if it.Error != "" {
				detail = it.Error
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", it.Variable, it.RunnerID, it.Action, expiry(it.TokenExpiresAt), detail)
		}
		_ = tw.Flush()
		line(w, "%d rotated, %d skipped, %d failed", out.Rotated, out.Skipped, out.Failed)
	}); err != nil {
		return err
	}
	if out.Failed > 0 {
		return fail.WithCode(fail.CodeFailure, fmt.Errorf("%d of %d rotations failed; the others completed (see the table above)", out.Failed, len(items)))
	}
	return nil
}
