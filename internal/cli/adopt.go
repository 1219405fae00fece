package cli

import (
	"io"
	"strconv"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// AdoptCmd takes over a runner created in the UI.
type AdoptCmd struct {
	RunnerID int64 `name:"runner-id" required:"" placeholder:"N" help:"The runner to take over (its owner, a project or group, also owns the variable unless --variable-project/--variable-group say otherwise)."`
	VariableFlags
	DryRun bool `name:"dry-run" help:"Only say what adopt would do, including how many managers use the current token (they stop working at the reset until redeployed from the variable), and change nothing."`
}

// Run implements the command.
func (c *AdoptCmd) Run(app *App) error {
	if c.RunnerID <= 0 {
		return fail.Usagef("--runner-id %d is not valid: expected the positive id of the runner to adopt (Settings > CI/CD > Runners shows it as #N)", c.RunnerID)
	}
	s := spec.New()
	s.Runner.Type = "" // the variable's owner defaults to the runner's, read from GitLab below
	if err := c.VariableFlags.apply(&s); err != nil {
		return err
	}
	svc, err := app.Service()
	if err != nil {
		return err
	}
	sp, runner, err := svc.AdoptSpec(app.Ctx, c.RunnerID, s.Variable)
	if err != nil {
		return err
	}
	r, err := svc.Resolve(app.Ctx, sp)
	if err != nil {
		return err
	}
	res, err := svc.Adopt(app.Ctx, r, runner, c.DryRun)
	if err != nil {
		return err
	}
	return app.Printer().Print(res, func(w io.Writer) {
		switch {
		case res.Action == lifecycle.ActionUnchanged:
			line(w, "runner %d is already managed: its token is stored in %s; nothing was changed", res.RunnerID, r.VarName())
		case res.DryRun:
			line(w, "would adopt %s runner %d: reset its token, mark it and store the new token in %s", res.RunnerType, res.RunnerID, r.VarName())
		default:
			line(w, "adopted %s runner %d: its new token is stored in %s", res.RunnerType, res.RunnerID, r.VarName())
		}
		if res.ManagersUnknown != "" {
			line(w, "managers: %s", res.ManagersUnknown)
		} else if res.Action != lifecycle.ActionUnchanged {
			verb := "use"
			if !res.DryRun {
				verb = "used"
			}
			managerLines(w, "managers that "+verb+" the old token (each works again once redeployed from $"+r.Var.Key+"): "+strconv.Itoa(len(res.Managers)), res.Managers)
			if len(res.Managers) == 0 {
				line(w, "managers: none used the token in the last day")
			}
		}
		for _, n := range res.Notes {
			line(w, "note: %s", n)
		}
		line(w, "token expires: %s", expiry(res.TokenExpiresAt))
		if res.DryRun {
			line(w, "dry run: nothing was changed")
		}
	})
}
