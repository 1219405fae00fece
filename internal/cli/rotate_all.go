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

// scopeName is "group platform and its 3 subgroups and projects", for messages.
func scopeName(owners []lifecycle.Owner, subgroups bool) string {
	o := owners[0]
	name := "the instance"
	if o.Kind != spec.OwnerInstance {
		name = fmt.Sprintf("%s %s", o.Kind, o.Path)
	}
	if subgroups {
		switch n := len(owners) - 1; n {
		case 0:
			name += " (it has no subgroups or projects)"
		case 1:
			name += " and its 1 subgroup or project"
		default:
			name += fmt.Sprintf(" and its %d subgroups and projects", n)
		}
	}
	return name
}

type bulkResult struct {
	Rotated int                  `json:"rotated"`
	Skipped int                  `json:"skipped"`
	Failed  int                  `json:"failed"`
	Runners []lifecycle.BulkItem `json:"variables"`
}

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
	svc := lifecycle.New(client, progress.Quieter(app.Log))
	var owners []lifecycle.Owner
	switch {
	case c.ProjectID != "":
		ns, err := client.ResolveProject(app.Ctx, c.ProjectID)
		if err != nil {
			return err
		}
		owners = append(owners, lifecycle.Owner{Kind: spec.OwnerProject, ID: ns.ID, Path: ns.FullPath})
	case c.GroupID != "":
		ns, err := client.ResolveGroup(app.Ctx, c.GroupID)
		if err != nil {
			return err
		}
		owners = append(owners, lifecycle.Owner{Kind: spec.OwnerGroup, ID: ns.ID, Path: ns.FullPath})
		if c.IncludeSubgroups {
			groups, projects, err := client.ListDescendants(app.Ctx, ns.ID)
			if err != nil {
				return err
			}
			for _, g := range groups {
				owners = append(owners, lifecycle.Owner{Kind: spec.OwnerGroup, ID: g.ID, Path: g.FullPath})
			}
			for _, p := range projects {
				owners = append(owners, lifecycle.Owner{Kind: spec.OwnerProject, ID: p.ID, Path: p.FullPath})
			}
		}
	default:
		owners = append(owners, lifecycle.Owner{Kind: spec.OwnerInstance})
	}
	refs, unlisted, err := svc.ManagedVariables(app.Ctx, owners)
	if err != nil {
		return err
	}
	for _, it := range unlisted {
		app.Log.Errorf("%s: %s", it.Variable, it.Error)
	}
	if len(refs) == 0 && len(unlisted) == 0 {
		// An empty table and exit 0 would hide a schedule pointed at the wrong place.
		return fail.WithCode(fail.CodeNotFound, fmt.Errorf("no variable managed by runner-bootstrap in %s: nothing to rotate; check the scope, or create a runner there first with runner-bootstrap create", scopeName(owners, c.IncludeSubgroups)))
	}
	prog := app.Progress("rotate_all", fmt.Sprintf("rotating %s in %s, %d at a time", output.Plural(len(refs), "managed variable", "managed variables"), output.Plural(len(owners), "owner", "owners"), c.Concurrency), len(refs))
	items := svc.RotateAll(app.Ctx, refs, lifecycle.RotateOptions{IfExpiringWithin: c.IfExpiringWithin.D(), RequireSingleManager: c.RequireSingle}, c.Concurrency, func(it lifecycle.BulkItem) {
		if it.Error != "" {
			prog.Failed(it.Variable, it.Error)
		} else {
			prog.Done(it.Variable, it.Action)
		}
	})
	prog.Finish()
	items = append(unlisted, items...)
	var out bulkResult
	out.Runners = items
	for _, it := range items {
		switch it.Action {
		case lifecycle.ActionRotated:
			out.Rotated++
		case lifecycle.ActionSkipped:
			out.Skipped++
		default:
			out.Failed++
		}
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
