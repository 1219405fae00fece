package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/audit"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/output"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/progress"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/safefile"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// AuditCmd reports what still depends on registration tokens and what needs attention.
type AuditCmd struct {
	Group            string            `name:"group" placeholder:"ID|PATH" help:"Audit this group: numeric id or full path."`
	IncludeSubgroups bool              `name:"include-subgroups" help:"With --group, also audit its subgroups and their projects."`
	ProjectID        string            `name:"project-id" placeholder:"ID|PATH" help:"Audit this project: numeric id or full path."`
	Instance         bool              `name:"instance" help:"Audit the instance: its setting, every runner and the instance variables (administrator)."`
	HTML             string            `name:"html" placeholder:"FILE" help:"Write a self-contained HTML report to FILE."`
	Markdown         string            `name:"markdown" placeholder:"FILE" help:"Write a Markdown report to FILE (for a merge request comment or job summary)."`
	FailOn           string            `name:"fail-on" enum:"low,medium,high,critical" default:"high" help:"Exit 20 when a finding is at least this severe: low, medium, high or critical."`
	WarnWithin       duration.Duration `name:"warn-within" default:"7d" placeholder:"DURATION" help:"Report stored tokens expiring within this window as token-expires-soon, e.g. 72h or 7d (default 7d)."`
	Concurrency      int               `name:"concurrency" default:"8" help:"Requests in flight at once, 1 to 32."`
}

// Run implements the command.
func (c *AuditCmd) Run(app *App) error {
	if countSet(c.Group != "", c.ProjectID != "", c.Instance) != 1 {
		return fail.Usagef("audit needs exactly one of --group, --project-id or --instance: what to audit")
	}
	if c.IncludeSubgroups && c.Group == "" {
		return fail.Usagef("--include-subgroups needs --group")
	}
	if c.WarnWithin <= 0 {
		return fail.Usagef("--warn-within %s is not positive: expected a duration such as 72h or 7d", c.WarnWithin)
	}
	if c.Concurrency < 1 || c.Concurrency > 32 {
		return fail.Usagef("--concurrency %d is out of range: expected 1 to 32", c.Concurrency)
	}
	if c.HTML != "" && c.HTML == c.Markdown {
		return fail.Usagef("--html and --markdown both name %s: give each report its own file", c.HTML)
	}
	reports := []struct {
		flag, path string
		write      func(io.Writer, audit.Report) error
	}{{"--markdown", c.Markdown, audit.WriteMarkdown}, {"--html", c.HTML, audit.WriteHTML}}
	for _, r := range reports {
		if r.path != "" {
			if err := safefile.Check(r.flag, r.path); err != nil {
				return err
			}
		}
	}
	client, err := app.Client()
	if err != nil {
		return err
	}
	server, err := client.Server(app.Ctx)
	if err != nil {
		return err
	}
	// Small scopes finish before progress would help; audit calls Progress one at a time.
	var task *progress.Task
	defer func() {
		if task != nil {
			task.Finish()
		}
	}()
	o := audit.Options{
		Kind: spec.OwnerInstance, IncludeSubgroups: c.IncludeSubgroups, WarnWithin: c.WarnWithin.D(),
		Concurrency: c.Concurrency, Server: server,
		Progress: func(runnerID int64, done, total int) {
			if total < 20 {
				return
			}
			if task == nil {
				task = app.Progress("audit", fmt.Sprintf("Reading %d runners", total), total)
			}
			task.Done(fmt.Sprintf("runner %d", runnerID), "read")
		},
	}
	switch {
	case c.Group != "":
		o.Kind, o.Ref = spec.OwnerGroup, strings.TrimSpace(c.Group)
	case c.ProjectID != "":
		o.Kind, o.Ref = spec.OwnerProject, strings.TrimSpace(c.ProjectID)
	}
	rep, err := audit.Run(app.Ctx, client, o)
	if err != nil {
		return err
	}
	for _, r := range reports {
		if r.path == "" {
			continue
		}
		// The reports hold no token, so they are readable by others (a job's artifacts).
		var b bytes.Buffer
		if err := r.write(&b, rep); err != nil {
			return err
		}
		if err := safefile.Write(r.flag, r.path, b.Bytes(), safefile.Public); err != nil {
			return err
		}
	}
	failOn := audit.Severity(c.FailOn)
	if err := app.Printer().Print(rep, func(w io.Writer) { c.summary(w, rep, failOn) }); err != nil {
		return err
	}
	if worst := rep.Worst(); worst != "" && worst.AtLeast(failOn) {
		n := 0
		for _, f := range rep.Findings {
			if f.Severity.AtLeast(failOn) {
				n++
			}
		}
		return fail.WithCode(fail.CodeFindings, errors.New(output.Plural(n, "finding", "findings")+" at or above --fail-on "+c.FailOn+" (the worst is "+string(worst)+")"))
	}
	return nil
}

// summary is the short text on stdout; the reports and -o json carry everything.
func (c *AuditCmd) summary(w io.Writer, rep audit.Report, failOn audit.Severity) {
	line(w, "audit of %s (GitLab %s): %s, %s", rep.Scope.Name(), rep.GitLab.Version, output.Plural(len(rep.Runners), "runner", "runners"), output.Plural(len(rep.Findings), "finding", "findings"))
	var counts []string
	for _, sev := range audit.Severities {
		counts = append(counts, fmt.Sprintf("%s %d", sev, rep.Summary.Count(sev)))
	}
	line(w, "  %s (fail on %s and above)", strings.Join(counts, ", "), failOn)
	for _, f := range rep.Findings {
		line(w, "%-8s %-36s %s", strings.ToUpper(string(f.Severity)), f.ID, f.Object)
	}
	for _, n := range rep.Notes {
		line(w, "note: %s", n)
	}
	for _, p := range []string{c.Markdown, c.HTML} {
		if p != "" {
			line(w, "report: %s", p)
		}
	}
}
