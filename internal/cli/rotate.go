package cli

import (
	"fmt"
	"io"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// RotateCmd resets a runner's token and stores the new one.
type RotateCmd struct {
	OwnerFlags
	VariableTargetFlags
	IfExpiringWithin duration.Duration `name:"if-expiring-within" placeholder:"DURATION" help:"Rotate only when the token expires within this window, e.g. 72h or 7d (default: always rotate)."`
	UseRunnerToken   bool              `name:"use-runner-token" help:"Reset with the runner's own current token, read from the job's environment variable named by --variable-key, for access tokens without rights on the runner."`
	Dotenv           string            `name:"dotenv" placeholder:"FILE" help:"Also write the result's non-secret facts as KEY=value lines for artifacts:reports:dotenv."`
	All              bool              `name:"all" help:"Rotate every variable this tool manages in the project (--project-id), group (--group-id) or instance (--variable-instance)."`
	IncludeSubgroups bool              `name:"include-subgroups" help:"With --all and --group-id: also the group's subgroups and their projects."`
	Concurrency      int               `name:"concurrency" default:"4" help:"With --all: rotations in flight at once."`
	RequireSingle    bool              `name:"require-single-manager" help:"Refuse, before any write, to rotate a token that more than one runner manager (host or pod) used within the last day: each would keep the revoked token until redeployed."`
	DryRun           bool              `name:"dry-run" help:"Make rotate's reads and checks, print whether it would rotate or skip and why, as apply --dry-run prints its plan, and change nothing."`
}

// Run implements the command.
func (c *RotateCmd) Run(app *App) error {
	if err := checkOutputPath("--dotenv", c.Dotenv); err != nil {
		return err
	}
	if c.DryRun && c.Dotenv != "" {
		return fail.Usagef("--dotenv goes without --dry-run: a dry run has no result for later jobs")
	}
	if c.All {
		return c.runAll(app)
	}
	if c.IncludeSubgroups {
		return fail.Usagef("--include-subgroups only goes with --all")
	}
	s, err := targetSpec(c.OwnerFlags, c.VariableTargetFlags)
	if err != nil {
		return err
	}
	if err := s.Variable.Validate(); err != nil {
		return err
	}
	opts := lifecycle.RotateOptions{IfExpiringWithin: c.IfExpiringWithin.D(), RequireSingleManager: c.RequireSingle, DryRun: c.DryRun}
	if c.UseRunnerToken {
		cur := tokenFromEnv(app.Getenv, s.Variable.Key)
		if cur == "" {
			return fail.Usagef("--use-runner-token reads the current runner token from $%s, which is empty here: run this in a job that receives the variable (protected variables reach only protected branches)", s.Variable.Key)
		}
		if !token.IsRunnerToken(cur) {
			return fail.Usagef("--use-runner-token needs a runner authentication token in $%s, but it holds %s", s.Variable.Key, token.Classify(cur))
		}
		app.redactor.Add(cur)
		sec := token.Secret(cur)
		opts.RunnerToken = &sec
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
	res, err := svc.Rotate(app.Ctx, r, opts)
	if err != nil {
		return err
	}
	if c.DryRun {
		plan.Items = append(plan.Items, rotateItem(r.VarName(), res, ""))
		return printDryPlan(app, f, plan, "")
	}
	if err := writeResultDotenv(c.Dotenv, res); err != nil {
		return err
	}
	return app.Printer().Print(res, func(w io.Writer) {
		switch res.Action {
		case lifecycle.ActionRotated:
			line(w, "rotated the token of runner %d and stored it in %s variable %s (scope %s)", res.RunnerID, r.VarOwnerPath, r.Var.Key, r.Var.Scope)
		case lifecycle.ActionRecreated:
			line(w, "replaced runner %d with new runner %d and stored its token in %s variable %s (scope %s)", res.PreviousRunnerID, res.RunnerID, r.VarOwnerPath, r.Var.Key, r.Var.Scope)
		default:
			line(w, "did not rotate runner %d", res.RunnerID)
		}
		line(w, "reason: %s", res.Reason)
		line(w, "token expires: %s", expiry(res.TokenExpiresAt))
		managerLines(w, fmt.Sprintf("managers that used the old token in the last day (redeploy each from $%s, then run runner-bootstrap status --wait-managers): %d", r.Var.Key, len(res.Managers)), res.Managers)
		serverLine(w, res.Gitlab)
		noteLines(w, res.Notes)
	})
}
