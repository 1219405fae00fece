package cli

import (
	"fmt"
	"io"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/output"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// PruneCmd deletes runners the tool created that nothing uses.
type PruneCmd struct {
	OwnerFlags
	Instance    bool              `name:"instance" help:"Look at instance runners (admin)."`
	RunnerType  []string          `name:"runner-type" enum:"instance_type,group_type,project_type" sep:"," placeholder:"TYPE" help:"Runner types to look at (default: the owner's own type)."`
	OlderThan   duration.Duration `name:"older-than" placeholder:"DURATION" help:"Grace period: prune an unreferenced runner only when it has had no contact (or, never contacted, was created) this long ago, e.g. 30d or 720h; a runner a live variable references is never pruned."`
	DryRun      bool              `name:"dry-run" help:"List what would be deleted and change nothing."`
	Managers    bool              `name:"managers" help:"Instead of runners: remove the managers (hosts or pods) of the runner behind --variable-key that have not contacted GitLab for --older-than (default 7d). GitLab removes a manager only with the runner's token (DELETE /runners/managers), so run it in a job that receives the variable: the token is read from $<variable-key>."`
	VariableKey string            `name:"variable-key" default:"RUNNER_TOKEN" help:"With --managers: key of the CI/CD variable that holds the runner's token (in the runner's project or group)."`
}

type pruneManagersResult struct {
	DryRun   bool                         `json:"dry_run"`
	Managers []lifecycle.ManagerPruneItem `json:"managers"`
}

// runManagers is prune --managers: one runner's stale managers, through its variable.
func (c *PruneCmd) runManagers(app *App) error {
	if c.Instance || len(c.RunnerType) > 0 {
		return fail.Usagef("prune --managers works on the runner behind one variable: give --project-id or --group-id (the runner's owner) and --variable-key, without --instance or --runner-type")
	}
	s, err := targetSpec(c.OwnerFlags, VariableTargetFlags{VariableKey: c.VariableKey, VariableEnvironmentScope: "*"})
	if err != nil {
		return err
	}
	if err := s.Variable.Validate(); err != nil {
		return err
	}
	cur := tokenFromEnv(app.Getenv, s.Variable.Key)
	if cur == "" {
		return fail.Usagef("prune --managers reads the runner token from $%s, which is empty here: GitLab removes a manager only with the runner's token, so run it in a job that receives the variable (a protected variable reaches only protected branches and tags)", s.Variable.Key)
	}
	if !token.IsRunnerToken(cur) {
		return fail.Usagef("prune --managers needs the runner authentication token in $%s, but it holds %s", s.Variable.Key, token.Classify(cur))
	}
	app.redactor.Add(cur)
	age := c.OlderThan.D()
	if age <= 0 {
		age = lifecycle.DefaultManagerAge
	}
	svc, err := app.Service()
	if err != nil {
		return err
	}
	r, err := svc.Resolve(app.Ctx, s)
	if err != nil {
		return err
	}
	items, err := svc.PruneManagers(app.Ctx, r, token.Secret(cur), age, c.DryRun)
	verb := "removed"
	if c.DryRun {
		verb = "would remove"
	}
	if perr := app.Printer().Print(pruneManagersResult{DryRun: c.DryRun, Managers: items}, func(w io.Writer) {
		if len(items) == 0 && err == nil {
			line(w, "no manager of the runner behind %s has been idle for more than %s", r.VarName(), duration.Duration(age))
		}
		for _, it := range items {
			line(w, "%s manager %s of runner %d: %s", verb, it.SystemID, it.RunnerID, it.Reason)
		}
		if c.DryRun && len(items) > 0 {
			line(w, "dry run: nothing was changed; run again without --dry-run to remove %s", output.Plural(len(items), "manager", "managers"))
		}
	}); perr != nil && err == nil {
		err = perr
	}
	return err
}

type pruneResult struct {
	DryRun  bool                  `json:"dry_run"`
	Runners []lifecycle.PruneItem `json:"runners"`
}

// Run implements the command.
func (c *PruneCmd) Run(app *App) error {
	if c.Managers {
		return c.runManagers(app)
	}
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
