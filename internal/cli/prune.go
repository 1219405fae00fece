package cli

import (
	"fmt"
	"io"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/output"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// PruneCmd deletes runners the tool created that nothing uses.
type PruneCmd struct {
	OwnerFlags
	Instance   bool              `name:"instance" help:"Look at instance runners (admin)."`
	RunnerType []string          `name:"runner-type" enum:"instance_type,group_type,project_type" sep:"," placeholder:"TYPE" help:"Runner types to look at (default: the owner's own type)."`
	OlderThan  duration.Duration `name:"older-than" placeholder:"DURATION" help:"Grace period: prune an unreferenced runner only when it has had no contact (or, never contacted, was created) this long ago, e.g. 30d or 720h; a runner a live variable references is never pruned."`
	DryRun     bool              `name:"dry-run" help:"List what would be deleted and change nothing."`
}

type pruneResult struct {
	DryRun  bool                  `json:"dry_run"`
	Runners []lifecycle.PruneItem `json:"runners"`
}

// Run implements the command.
func (c *PruneCmd) Run(app *App) error {
	if countSet(c.ProjectID != "", c.GroupID != "", c.Instance) != 1 {
		return fail.Usagef("prune needs exactly one of --project-id, --group-id or --instance: where to look for runners")
	}
	svc, err := app.Service()
	if err != nil {
		return err
	}
	o := lifecycle.PruneOptions{OlderThan: c.OlderThan.D(), DryRun: c.DryRun}
	sc := lifecycle.Scope{Kind: spec.OwnerInstance}
	switch {
	case c.ProjectID != "":
		sc.Kind, sc.Ref, o.Types = spec.OwnerProject, c.ProjectID, []spec.RunnerType{spec.ProjectType}
	case c.GroupID != "":
		sc.Kind, sc.Ref, o.Types = spec.OwnerGroup, c.GroupID, []spec.RunnerType{spec.GroupType}
	default:
		o.Types = []spec.RunnerType{spec.InstanceType}
	}
	owners, err := lifecycle.Owners(app.Ctx, svc.API, nil, sc)
	if err != nil {
		return err
	}
	o.Owner, o.OwnerID = owners[0].Kind, owners[0].ID
	where := lifecycle.ScopeName(owners, false)
	if len(c.RunnerType) > 0 {
		o.Types = nil
		for _, t := range c.RunnerType {
			o.Types = append(o.Types, spec.RunnerType(t))
		}
	}
	verb := "deleted"
	if c.DryRun {
		verb = "would delete"
	}
	prog := app.Progress("prune", "looking for runners to prune in "+where, 0)
	o.Progress = func(it lifecycle.PruneItem) {
		prog.Done(fmt.Sprintf("runner %d (%s %q)", it.RunnerID, it.RunnerType, it.Description), verb+": "+it.Reason)
	}
	items, err := svc.Prune(app.Ctx, o)
	prog.Finish()
	if perr := app.Printer().Print(pruneResult{DryRun: c.DryRun, Runners: items}, func(w io.Writer) {
		if len(items) == 0 {
			line(w, "nothing to prune in %s", where)
		}
		for _, it := range items {
			line(w, "%s runner %d (%s %q): %s", verb, it.RunnerID, it.RunnerType, it.Description, it.Reason)
		}
		if c.DryRun && len(items) > 0 {
			line(w, "dry run: nothing was changed; run again without --dry-run to delete %s", output.Plural(len(items), "runner", "runners"))
		}
	}); perr != nil && err == nil {
		err = perr
	}
	return err
}
