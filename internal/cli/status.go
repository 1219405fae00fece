package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// StatusCmd reports on the runner behind a variable.
type StatusCmd struct {
	OwnerFlags
	VariableTargetFlags
	WarnWithin   duration.Duration `name:"warn-within" default:"72h" placeholder:"DURATION" help:"Exit 10 when the token expires within this window, e.g. 72h or 7d (default: ${default})."`
	WaitManagers duration.Duration `name:"wait-managers" placeholder:"DURATION" help:"After a rotation: poll the runner's managers until every one that used the token in the day before the rotation has contacted GitLab again (with the new token), or DURATION (e.g. 15m) has passed; exit 1 naming those that did not."`
	VerifyToken  bool              `name:"verify-token" help:"Also check the stored token itself: read it from the job's $<variable-key> (a job that receives the variable) and ask GitLab whether it is the runner's current one (POST /runners/verify, which GitLab counts as a contact of the runner)."`
}

// managerLines prints a heading and one line per manager; nothing for an empty list unless
// the heading is status's count.
func managerLines(w io.Writer, heading string, ms []gitlab.Manager) {
	if len(ms) == 0 && !strings.HasPrefix(heading, "managers: ") {
		return
	}
	line(w, "%s", heading)
	for _, m := range ms {
		contacted := "never"
		if m.ContactedAt != nil {
			contacted = m.ContactedAt.UTC().Format(time.RFC3339)
		}
		line(w, "  %s %s, last contact %s, version %s", m.SystemID, orDefault(m.Status, "-"), contacted, orDefault(m.Version, "unknown"))
	}
}

// Run implements the command.
func (c *StatusCmd) Run(app *App) error {
	s, err := targetSpec(c.OwnerFlags, c.VariableTargetFlags)
	if err != nil {
		return err
	}
	if err := s.Variable.Validate(); err != nil {
		return err
	}
	var cur string
	if c.VerifyToken {
		if cur = tokenFromEnv(app.Getenv, s.Variable.Key); cur == "" {
			return fail.Usagef("--verify-token reads the stored token from $%s, which is empty here: run status in a job that receives the variable (a protected variable reaches only protected branches and tags)", s.Variable.Key)
		}
		if !token.IsRunnerToken(cur) {
			return fail.Usagef("--verify-token needs the runner authentication token in $%s, but it holds %s", s.Variable.Key, token.Classify(cur))
		}
		app.redactor.Add(cur)
	}
	svc, err := app.Service()
	if err != nil {
		return err
	}
	r, err := svc.Resolve(app.Ctx, s)
	if err != nil {
		return err
	}
	rep, err := svc.Status(app.Ctx, r, c.WarnWithin.D())
	if err != nil {
		return err
	}
	if c.VerifyToken {
		if rep, err = svc.CheckStoredToken(app.Ctx, r, rep, token.Secret(cur)); err != nil {
			return err
		}
	}
	if c.WaitManagers > 0 && rep.RunnerID != 0 && rep.ExitCode != fail.CodeRunnerGone && rep.ExitCode != fail.CodeVariableMissing {
		task := app.Progress("wait-managers", fmt.Sprintf("waiting up to %s for the managers of runner %d to contact GitLab with the new token", c.WaitManagers, rep.RunnerID), 0)
		w, err := svc.WaitManagers(app.Ctx, rep, lifecycle.WaitOptions{Within: c.WaitManagers.D(), Progress: func(m gitlab.Manager) {
			task.Done(m.SystemID, "back with the new token at "+m.ContactedAt.UTC().Format(time.RFC3339))
		}})
		task.Finish()
		if err != nil {
			return err
		}
		rep.WaitManagers = &w
		if len(w.Missing) > 0 && rep.ExitCode == fail.CodeOK {
			rep.ExitCode, rep.Health = fail.CodeFailure, lifecycle.HealthManagersNotBack
			rep.Message = fmt.Sprintf("%d of %d managers have not contacted GitLab since the rotation at %s within %s: %s (redeploy them from $%s)", len(w.Missing), len(w.Missing)+len(w.Back), w.RotatedAt.Format(time.RFC3339), c.WaitManagers, lifecycle.DescribeManagers(w.Missing), r.Var.Key)
		}
	}
	if err := app.Printer().Print(rep, func(w io.Writer) {
		line(w, "variable: %s variable %s (scope %s)", r.VarOwnerPath, r.Var.Key, r.Var.Scope)
		if rep.RunnerID != 0 {
			line(w, "runner:   %d %s %q, status %s", rep.RunnerID, rep.RunnerType, rep.Description, orDefault(rep.Status, "-"))
		}
		if rep.ContactedAt != nil {
			line(w, "contacted: %s", rep.ContactedAt.UTC().Format(time.RFC3339))
		}
		if rep.ManagersUnknown != "" {
			line(w, "managers: unknown on this version (%s)", rep.ManagersUnknown)
		} else {
			managerLines(w, fmt.Sprintf("managers: %d", len(rep.Managers)), rep.Managers)
		}
		if mw := rep.WaitManagers; mw != nil {
			switch {
			case mw.Unknown != "":
				line(w, "wait for managers: unknown on this version (%s)", mw.Unknown)
			default:
				line(w, "managers back since the rotation at %s: %d of %d", mw.RotatedAt.Format(time.RFC3339), len(mw.Back), len(mw.Back)+len(mw.Missing))
			}
		}
		line(w, "token expires: %s", expiry(rep.TokenExpiresAt))
		if rep.Health == lifecycle.HealthNeverContacted {
			line(w, "health: %s (warning): %s", rep.Health, rep.Message)
		} else {
			line(w, "health: %s: %s", rep.Health, rep.Message)
		}
		serverLine(w, rep.Gitlab)
		noteLines(w, rep.Notes)
	}); err != nil {
		return err
	}
	if rep.ExitCode != fail.CodeOK {
		return fail.WithCode(rep.ExitCode, errors.New(rep.Message))
	}
	return nil
}
