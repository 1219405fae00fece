package cli

import (
	"errors"
	"io"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// CheckCmd is the read-only preflight: can this token create, store, rotate and delete here?
type CheckCmd struct {
	RunnerFlags
	VariableFlags
}

// Run implements the command.
func (c *CheckCmd) Run(app *App) error {
	s := spec.New()
	c.RunnerFlags.apply(&s)
	if err := c.VariableFlags.apply(&s); err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	svc, err := app.Service()
	if err != nil {
		return err
	}
	r, err := svc.Resolve(app.Ctx, s)
	if err != nil {
		return err
	}
	rep, err := svc.Check(app.Ctx, r)
	if err != nil {
		return err
	}
	if err := app.Printer().Print(rep, func(w io.Writer) {
		serverLine(w, rep.Gitlab)
		exp := "never"
		if rep.Token.ExpiresAt != nil {
			exp = rep.Token.ExpiresAt.Format(time.DateOnly)
		}
		line(w, "token: %s access token, scopes %v, expires %s", rep.Token.Kind, rep.Token.Scopes, exp)
		line(w, "role on the runner's owner (%s): %s", r.OwnerPath, rep.RunnerOwnerRole)
		line(w, "role on the variable's owner (%s): %s", r.VarOwnerPath, rep.VariableOwnerRole)
		for _, st := range rep.Steps {
			mark := "ok  "
			if !st.OK {
				mark = "FAIL"
			}
			line(w, "%s %s: %s", mark, st.Name, st.Reason)
		}
		noteLines(w, rep.Notes)
	}); err != nil {
		return err
	}
	if rep.ExitCode != fail.CodeOK {
		return fail.WithCode(rep.ExitCode, errors.New("some steps will not work with this token on this GitLab (see FAIL above)"))
	}
	return nil
}
