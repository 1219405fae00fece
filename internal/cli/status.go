package cli

import (
	"errors"
	"io"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// StatusCmd reports on the runner behind a variable.
type StatusCmd struct {
	OwnerFlags
	VariableTargetFlags
	WarnWithin  duration.Duration `name:"warn-within" default:"72h" placeholder:"DURATION" help:"Exit 10 when the token expires within this window, e.g. 72h or 7d (default: ${default})."`
	VerifyToken bool              `name:"verify-token" help:"Also check the stored token itself: read it from the job's $<variable-key> (a job that receives the variable) and ask GitLab whether it is the runner's current one (POST /runners/verify, which GitLab counts as a contact of the runner)."`
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
	if err := app.Printer().Print(rep, func(w io.Writer) {
		line(w, "variable: %s variable %s (scope %s)", r.VarOwnerPath, r.Var.Key, r.Var.Scope)
		if rep.RunnerID != 0 {
			line(w, "runner:   %d %s %q, status %s", rep.RunnerID, rep.RunnerType, rep.Description, orDefault(rep.Status, "-"))
		}
		if rep.ContactedAt != nil {
			line(w, "contacted: %s", rep.ContactedAt.UTC().Format(time.RFC3339))
		}
		line(w, "managers: %d", len(rep.Managers))
		for _, m := range rep.Managers {
			contacted := "never"
			if m.ContactedAt != nil {
				contacted = m.ContactedAt.UTC().Format(time.RFC3339)
			}
			line(w, "  %s %s, last contact %s", m.SystemID, m.Status, contacted)
		}
		line(w, "token expires: %s", expiry(rep.TokenExpiresAt))
		if rep.Health == lifecycle.HealthNeverContacted {
			line(w, "health: %s (warning): %s", rep.Health, rep.Message)
		} else {
			line(w, "health: %s: %s", rep.Health, rep.Message)
		}
	}); err != nil {
		return err
	}
	if rep.ExitCode != fail.CodeOK {
		return fail.WithCode(rep.ExitCode, errors.New(rep.Message))
	}
	return nil
}
