package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/migrate"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/readlimit"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/safefile"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// MigrateCmd turns legacy registration-token configuration into a created runner whose token
// is stored like create stores it.
type MigrateCmd struct {
	HelmValues          string `name:"helm-values" placeholder:"FILE" help:"A gitlab-runner Helm chart values file using registration-token settings."`
	RegisterCommand     string `name:"register-command" placeholder:"CMD" help:"A legacy 'gitlab-runner register …' command line (a registration token in it is never printed; prefer --register-command-file so it stays out of argv)."`
	RegisterCommandFile string `name:"register-command-file" placeholder:"FILE" help:"Read the legacy register command from a file, or - for stdin."`
	Write               string `name:"write" placeholder:"FILE" help:"Write the migrated values file here (legacy keys removed, the token referenced, never written)."`
	SecretName          string `name:"secret-name" placeholder:"NAME" help:"With --helm-values: reference the token through runners.secret NAME instead of --set runnerToken."`
	DryRun              bool   `name:"dry-run" help:"Print the runner that would be created and the values diff; change nothing."`
	RunnerFlags
	VariableFlags
}

type migrateResult struct {
	DryRun          bool              `json:"dry_run"`
	Source          string            `json:"source"`
	Runner          spec.Runner       `json:"runner"`
	Result          *lifecycle.Result `json:"result,omitempty"`
	MigratedValues  string            `json:"migrated_values,omitempty"`
	ValuesDiff      string            `json:"values_diff,omitempty"`
	RegisterCommand string            `json:"register_command,omitempty"`
	Warnings        []string          `json:"warnings"`
}

// Run implements the command.
func (c *MigrateCmd) Run(app *App, kctx *kong.Context) error {
	// Flags the user typed (kong also marks defaults as set, so the arguments are read).
	explicit := map[string]bool{}
	for _, a := range kctx.Args {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			explicit[strings.TrimPrefix(name, "no-")] = true
		}
	}
	if countSet(c.HelmValues != "", c.RegisterCommand != "", c.RegisterCommandFile != "") != 1 {
		return fail.Usagef("migrate needs exactly one of --helm-values, --register-command or --register-command-file: what to migrate")
	}
	if c.Write != "" && c.HelmValues == "" {
		return fail.Usagef("--write goes with --helm-values: it writes the migrated values file")
	}
	if c.SecretName != "" && c.HelmValues == "" {
		return fail.Usagef("--secret-name goes with --helm-values")
	}
	if err := checkOutputPath("--write", c.Write); err != nil {
		return err
	}
	out := migrateResult{DryRun: c.DryRun, Warnings: []string{}}
	s := spec.New()
	c.RunnerFlags.apply(&s)
	if err := c.VariableFlags.apply(&s); err != nil {
		return err
	}
	var migrated []byte
	var reg *migrate.RegisterMigration
	switch {
	case c.HelmValues != "":
		data, err := readlimit.ReadFile(app.Ctx, "--helm-values", c.HelmValues, readlimit.ValuesFile)
		if err != nil {
			return err
		}
		m, err := migrate.ParseHelmValuesNamed(c.HelmValues, data)
		if err != nil {
			return err
		}
		out.Source, out.Warnings = c.HelmValues, append(out.Warnings, m.Warnings...)
		merge(&s.Runner, m.Runner(), explicit)
		if migrated, err = m.Rewrite(migrate.RewriteOptions{SecretName: c.SecretName, VariableKey: s.Variable.Key}); err != nil {
			return err
		}
		out.ValuesDiff = m.Diff(migrated)
	default:
		line := c.RegisterCommand
		out.Source = "register command"
		if c.RegisterCommandFile != "" {
			b, err := readFileOrStdin(app, c.RegisterCommandFile)
			if err != nil {
				return err
			}
			line, out.Source = string(b), c.RegisterCommandFile
		}
		var err error
		if reg, err = migrate.ParseRegisterCommand(line); err != nil {
			return err
		}
		out.Warnings = append(out.Warnings, reg.Warnings...)
		merge(&s.Runner, reg.Runner(), explicit)
		out.RegisterCommand = reg.NewCommand(s.Variable.Key)
	}
	if err := s.Validate(); err != nil {
		return err
	}
	out.Runner = s.Runner
	if !c.DryRun {
		_, res, err := ensure(app, s)
		if err != nil {
			return err
		}
		out.Result = &res
		if c.Write != "" {
			// 0600: a values file may hold other secrets of its own.
			if err := safefile.Write("--write", c.Write, migrated, safefile.Secret); err != nil {
				return fail.WithCode(fail.CodeFailure, fmt.Errorf("%w; but GitLab was changed: runner %d was %s and its token is stored in %s variable %s, so run again to write the file", err, res.RunnerID, res.Action, res.VariableOwner, res.VariableKey))
			}
			out.MigratedValues = c.Write
		}
	}
	for _, w := range out.Warnings {
		app.Log.Warn(w)
	}
	return app.Printer().Print(out, func(w io.Writer) {
		verb := "created"
		if c.DryRun {
			verb = "would create"
		}
		if out.Result != nil {
			verb = out.Result.Action
		}
		line(w, "%s %s runner from %s: tags [%s], run untagged %t, locked %t, access level %s, maximum timeout %s",
			verb, s.Runner.Type, out.Source, strings.Join(s.Runner.TagList, ","), s.Runner.RunUntagged, s.Runner.Locked, orDefault(s.Runner.AccessLevel, spec.NotProtected), timeoutText(s.Runner.MaximumTimeout))
		if out.Result != nil {
			line(w, "runner %d; token stored in %s variable %s", out.Result.RunnerID, out.Result.VariableOwner, out.Result.VariableKey)
		}
		if out.ValuesDiff != "" && (c.DryRun || c.Write == "") {
			line(w, "migrated values (diff):")
			_, _ = io.WriteString(w, out.ValuesDiff)
		}
		if out.MigratedValues != "" {
			line(w, "wrote migrated values to %s", out.MigratedValues)
		}
		if out.RegisterCommand != "" {
			line(w, "register each host with:")
			line(w, "  %s", out.RegisterCommand)
		}
	})
}

// merge copies the migrated attributes into the flag-built runner, except those whose flag was
// given on the command line: explicit flags win.
func merge(dst *spec.Runner, m spec.Runner, explicit map[string]bool) {
	if !explicit["description"] {
		dst.Description = m.Description
	}
	if !explicit["tag-list"] {
		dst.TagList = m.TagList
	}
	if !explicit["run-untagged"] {
		dst.RunUntagged = m.RunUntagged
	}
	if !explicit["locked"] {
		dst.Locked = m.Locked
	}
	if !explicit["access-level"] && m.AccessLevel != "" {
		dst.AccessLevel = m.AccessLevel
	}
	if !explicit["maximum-timeout"] {
		dst.MaximumTimeout = m.MaximumTimeout
	}
	if !explicit["paused"] {
		dst.Paused = m.Paused
	}
	if !explicit["maintenance-note"] {
		dst.MaintenanceNote = m.MaintenanceNote
	}
}

// readFileOrStdin reads the register command file ("-": stdin), bounded and interruptible.
func readFileOrStdin(app *App, path string) ([]byte, error) {
	if path == "-" {
		return readlimit.Read(app.Ctx, "--register-command-file from stdin", app.Stdin, readlimit.CommandFile)
	}
	return readlimit.ReadFile(app.Ctx, "--register-command-file", path, readlimit.CommandFile)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func timeoutText(s int64) string {
	if s == 0 {
		return "none"
	}
	return fmt.Sprintf("%ds", s)
}
