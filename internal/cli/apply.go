package cli

import (
	"fmt"
	"io"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fleet"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/output"
)

// ApplyCmd ensures every runner of a fleet manifest.
type ApplyCmd struct {
	File        string `name:"file" short:"f" required:"" placeholder:"FILE" predictor:"file" help:"Fleet manifest (YAML): a runners: list whose keys mirror the create flags (- reads stdin)."`
	DryRun      bool   `name:"dry-run" help:"Print the plan and change nothing."`
	Prune       bool   `name:"prune" help:"Also delete runners this tool created in the manifest's runner owners that no entry wants (and the variables that record them). Needs the whole manifest: not with a shard of several."`
	Concurrency int    `name:"concurrency" default:"8" help:"Requests in flight at once, 1 to 32."`
	Shard       string `name:"shard" placeholder:"I/N" help:"Apply only shard I of N (counted from 1), each variable owner's entries kept together, computed from the manifest alone (default: $$CI_NODE_INDEX/$$CI_NODE_TOTAL of a parallel: N job)."`
}

type applyReport struct {
	File    string        `json:"file"`
	Gitlab  *gitlab.Info  `json:"gitlab"`
	Notes   []string      `json:"notes,omitempty"`
	Plan    []*fleet.Item `json:"plan"`
	Summary fleet.Summary `json:"summary"`
}

// Run implements the command. The manifest is checked whole before GitLab is contacted.
func (c *ApplyCmd) Run(app *App) error {
	if c.Concurrency < 1 || c.Concurrency > 32 {
		return fail.Usagef("--concurrency %d is out of range: expected 1 to 32", c.Concurrency)
	}
	sh, err := c.shard(app)
	if err != nil {
		return err
	}
	if c.Prune && sh.Total > 1 {
		return fail.Usagef("--prune cannot run in shard %s: it must see the whole manifest to know which runners no entry wants; run apply --prune --shard 1/1 in one job after the parallel ones", sh)
	}
	m, err := fleet.Load(app.Ctx, c.File, app.Stdin)
	if err != nil {
		return err
	}
	app.Log.WithField("shard", sh.String()).Infof("planning %d of the %s of %s", len(m.Select(sh)), output.Plural(len(m.Entries), "entry", "entries"), c.File)
	return runPlan(app, m, sh, planOptions{prune: c.Prune, dryRun: c.DryRun, concurrency: c.Concurrency})
}

type planOptions struct {
	prune, dryRun bool
	concurrency   int
}

// runPlan plans a manifest, prints the plan and, unless a dry run, applies it: what apply does,
// and create --dry-run with a manifest of its one spec.
func runPlan(app *App, m *fleet.Manifest, sh fleet.Shard, o planOptions) error {
	client, err := app.Client()
	if err != nil {
		return err
	}
	// The shards of one manifest spend one user's rate limit at once.
	client.ShareBudget(sh.Total, o.concurrency)
	f := &fleet.Fleet{API: client, Log: app.Log, Concurrency: o.concurrency, Progress: app.progressOptions()}
	plan, err := f.Plan(app.Ctx, m, sh, o.prune)
	if err != nil {
		return err
	}
	if o.dryRun {
		return printDryPlan(app, f, plan, m.File)
	}
	if app.Output != "json" {
		redactItems(app, plan.Items)
		plan.WritePlan(app.Stdout)
	}
	f.Apply(app.Ctx, plan)
	redactItems(app, plan.Items)
	sum := f.Summarize(plan, false)
	f.LogSummary(sum)
	if err := app.Printer().Print(applyReport{File: m.File, Gitlab: plan.Gitlab, Notes: plan.Notes, Plan: plan.Items, Summary: sum}, func(w io.Writer) {
		line(w, "")
		plan.WriteResults(w, sum)
	}); err != nil {
		return err
	}
	if sum.Failed > 0 {
		return fail.WithCode(fail.CodeFailure, fmt.Errorf("%d of %d plan items failed; the others were applied (see the table above)", sum.Failed, len(plan.Items)))
	}
	return nil
}

// printDryPlan prints a plan that is not applied, in the shape every --dry-run shares (apply,
// create, rotate, delete): the plan table, then the counts; -o json the items and summary.
func printDryPlan(app *App, f *fleet.Fleet, plan *fleet.Plan, file string) error {
	redactItems(app, plan.Items)
	if app.Output != "json" {
		plan.WritePlan(app.Stdout)
	}
	sum := f.Summarize(plan, true)
	f.LogSummary(sum)
	if err := app.Printer().Print(applyReport{File: file, Plan: plan.Items, Summary: sum}, func(w io.Writer) {
		plan.WriteSummary(w, sum)
	}); err != nil {
		return err
	}
	if sum.Failed > 0 {
		return fail.WithCode(fail.CodeFailure, fmt.Errorf("%d of %d plan items cannot be applied (see the table above)", sum.Failed, len(plan.Items)))
	}
	return nil
}

// shard is --shard, else the CI job's CI_NODE_INDEX/CI_NODE_TOTAL, else the whole manifest.
func (c *ApplyCmd) shard(app *App) (fleet.Shard, error) {
	if c.Shard != "" {
		return fleet.ParseShard(c.Shard)
	}
	return fleet.ShardFromEnv(app.Getenv)
}

// redactItems passes the sentences GitLab's answers went into through the program's redactor
// before they reach stdout: results never hold a token, and this keeps it so should an error
// body ever echo one.
func redactItems(app *App, items []*fleet.Item) {
	for _, it := range items {
		it.Error, it.Reason = app.redactor.Redact(it.Error), app.redactor.Redact(it.Reason)
		for i := range it.Notes {
			it.Notes[i] = app.redactor.Redact(it.Notes[i])
		}
	}
}
