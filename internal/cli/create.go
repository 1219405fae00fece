package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fleet"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/output"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/safefile"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// CreateCmd ensures one runner and its variable.
type CreateCmd struct {
	RunnerFlags
	VariableFlags
	Dotenv string `name:"dotenv" placeholder:"FILE" help:"Also write the result's non-secret facts as KEY=value lines for artifacts:reports:dotenv."`
	DryRun bool   `name:"dry-run" help:"Print what create would do, as apply --dry-run prints its plan (attributes as old → new), and change nothing."`
}

// Run implements the command.
func (c *CreateCmd) Run(app *App) error {
	s := spec.New()
	c.RunnerFlags.apply(&s)
	if err := c.VariableFlags.apply(&s); err != nil {
		return err
	}
	if err := checkOutputPath("--dotenv", c.Dotenv); err != nil {
		return err
	}
	if c.DryRun {
		if c.Dotenv != "" {
			return fail.Usagef("--dotenv goes without --dry-run: a dry run has no result for later jobs")
		}
		if err := s.Validate(); err != nil {
			return err
		}
		return runPlan(app, fleet.FromSpec("create", s), fleet.All, planOptions{dryRun: true, concurrency: 1})
	}
	r, res, err := ensure(app, s)
	if err != nil {
		return err
	}
	if res.Action == lifecycle.ActionUpdated && r.Var.Key == spec.DefaultKey && slices.Contains(res.Changes, "description") {
		// The usual slip: a second create for another runner, without --variable-key.
		app.Log.Warnf("runner %d, whose token is in %s, had another description and was updated in place to %q: the variable is the runner's identity, so a create with the default --variable-key %s re-purposes the runner stored there; give each runner its own --variable-key", res.RunnerID, r.VarName(), s.Runner.Description, spec.DefaultKey)
	}
	if err := writeResultDotenv(c.Dotenv, res); err != nil {
		return err
	}
	return app.Printer().Print(res, func(w io.Writer) { printResult(w, r, res) })
}

// ensure validates s, resolves its projects and groups, and ensures the runner and variable:
// what create and migrate share.
func ensure(app *App, s spec.Spec) (lifecycle.Resolved, lifecycle.Result, error) {
	if err := s.Validate(); err != nil {
		return lifecycle.Resolved{}, lifecycle.Result{}, err
	}
	svc, err := app.Service()
	if err != nil {
		return lifecycle.Resolved{}, lifecycle.Result{}, err
	}
	r, err := svc.Resolve(app.Ctx, s)
	if err != nil {
		return r, lifecycle.Result{}, err
	}
	res, err := svc.Ensure(app.Ctx, r)
	return r, res, err
}

func printResult(w io.Writer, r lifecycle.Resolved, res lifecycle.Result) {
	switch res.Action {
	case lifecycle.ActionCreated:
		line(w, "created %s runner %d for %s", res.RunnerType, res.RunnerID, r.OwnerPath)
	case lifecycle.ActionReplaced:
		line(w, "replaced runner %d with new %s runner %d for %s", res.PreviousRunnerID, res.RunnerType, res.RunnerID, r.OwnerPath)
	case lifecycle.ActionUpdated:
		line(w, "updated runner %d for %s: %s", res.RunnerID, r.OwnerPath, strings.Join(lifecycle.DescribeChanges(res.Changes, res.Diff), ", "))
	case lifecycle.ActionUnchanged:
		line(w, "runner %d for %s is up to date; nothing was written", res.RunnerID, r.OwnerPath)
	}
	line(w, "token stored in %s variable %s (scope %s): %s", r.VarOwnerPath, r.Var.Key, r.Var.Scope, variableFlags(r))
	line(w, "token expires: %s", expiry(res.TokenExpiresAt))
	for _, id := range res.OrphansDeleted {
		line(w, "deleted runner %d: it was marked for this variable but its token was never stored", id)
	}
	serverLine(w, res.Gitlab)
	noteLines(w, res.Notes)
}

func variableFlags(r lifecycle.Resolved) string {
	v := r.Spec.Variable
	parts := []string{"masked"}
	if v.Hidden && v.Owner != spec.OwnerInstance && r.Server.Has(gitlab.CapMaskedAndHidden) {
		parts = append(parts, "hidden")
	}
	if v.Protected {
		parts = append(parts, "protected")
	} else {
		parts = append(parts, "not protected")
	}
	if v.Type == spec.File {
		parts = append(parts, "file")
	}
	return strings.Join(parts, ", ")
}

func expiry(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// writeResultDotenv writes the result's facts for later jobs, the same as its JSON (never the
// token: a Result holds none). The path was checked before anything changed on GitLab
// (checkOutputPath); if the write still fails, GitLab has changed, so the error is not "bad
// input, nothing changed" (exit 2) but a failure that names the runner.
func writeResultDotenv(path string, res lifecycle.Result) error {
	if path == "" {
		return nil
	}
	facts, err := output.Facts("RUNNER_BOOTSTRAP", res)
	if err == nil {
		err = output.WriteDotenv(path, facts)
	}
	if err != nil {
		return fail.WithCode(fail.CodeFailure, fmt.Errorf("%w; but GitLab was changed: runner %d was %s and its token is stored in %s variable %s", err, res.RunnerID, res.Action, res.VariableOwner, res.VariableKey))
	}
	return nil
}

// checkOutputPath refuses, before anything changes on GitLab, an output file that could not
// be written afterwards: a command must not create a runner and then exit "bad input".
func checkOutputPath(flag, path string) error {
	if path == "" {
		return nil
	}
	return safefile.Check(flag, path)
}
