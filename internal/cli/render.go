package cli

import (
	"path/filepath"
	"strconv"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/render"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// RenderCmd writes the token from the job's environment into what a deploy consumes.
type RenderCmd struct {
	Format    string `name:"format" required:"" enum:"secret,helm-values,config-toml" help:"secret (Kubernetes Secret with runner-token and an empty runner-registration-token), helm-values (gitlabUrl, runnerToken) or config-toml (a [[runners]] stanza)."`
	File      string `name:"file" placeholder:"PATH" help:"Write to this file (mode 0600) instead of stdout (pipe stdout into kubectl or helm: job logs mask the token, not its base64 form); required with -o json, whose object says what was written and never holds the token."`
	TokenEnv  string `name:"token-env" default:"RUNNER_TOKEN" help:"Environment variable holding the runner token (the CI/CD variable create stores)."`
	Name      string `name:"name" default:"gitlab-runner-secret" help:"Secret name (secret) or runner name (config-toml)."`
	Namespace string `name:"namespace" help:"Kubernetes namespace of the Secret."`
	Executor  string `name:"executor" default:"shell" help:"Executor of the config.toml stanza."`
	RunnerID  int64  `name:"runner-id" placeholder:"N" help:"config-toml: the runner's id, written as id = N (gitlab-runner 19.2+ autoscalers key instances by URL and id; default: $RUNNER_BOOTSTRAP_RUNNER_ID from create's --dotenv, else left out)."`
	SystemID  string `name:"system-id" placeholder:"NAME|ID" help:"config-toml with --file: also write .runner_system_id beside the file, the system id gitlab-runner reads there, derived from NAME (a host or pod name such as $HOSTNAME, so a replica keeps one manager entry across restarts) or given as s_/r_ and 12 letters or digits."`
}

// renderResult is render's JSON with --file: what was written where, never the token.
type renderResult struct {
	Format string `json:"format"`
	File   string `json:"file"`
	Mode   string `json:"mode"`
}

// Run implements the command.
func (c *RenderCmd) Run(app *App) error {
	if app.Output == "json" && c.File == "" {
		// JSON output never holds a token, and render's output is the token.
		return fail.Usagef("render -o json writes the token only to a file: pass --file PATH (the JSON then says what was written), or leave out -o json to pipe the %s from stdout", c.Format)
	}
	if c.Format != "config-toml" && (c.RunnerID != 0 || c.SystemID != "") {
		return fail.Usagef("--runner-id and --system-id go only with --format config-toml")
	}
	var systemID string
	if c.SystemID != "" {
		if c.File == "" {
			return fail.Usagef("--system-id writes %s beside the config.toml: pass --file PATH for the config.toml stanza", render.SystemIDFile)
		}
		id, err := render.SystemID(c.SystemID)
		if err != nil {
			return err
		}
		systemID = id
	}
	if c.Format == "config-toml" && c.RunnerID == 0 {
		if v := app.Getenv("RUNNER_BOOTSTRAP_RUNNER_ID"); v != "" {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				return fail.Usagef("$RUNNER_BOOTSTRAP_RUNNER_ID is %q: expected the runner id create's --dotenv wrote, or pass --runner-id", v)
			}
			c.RunnerID = id
		} else {
			app.Log.Warn("the config.toml stanza has no runner id: pass --runner-id (or $RUNNER_BOOTSTRAP_RUNNER_ID from create's --dotenv); gitlab-runner 19.2+ autoscaler executors key their instances by URL and id")
		}
	}
	tok := tokenFromEnv(app.Getenv, c.TokenEnv)
	if tok == "" {
		return fail.Usagef("$%s is empty: render reads the runner token from the job's environment (a protected variable reaches only protected branches and tags)", c.TokenEnv)
	}
	app.redactor.Add(tok)
	if !token.IsRunnerToken(tok) {
		return fail.Usagef("$%s holds %s: render needs a runner authentication token (glrt-)", c.TokenEnv, token.Classify(tok))
	}
	// The Secret holds no URL; the other formats need the one every command uses.
	var url string
	if c.Format != "secret" {
		u, err := app.gitlabURL()
		if err != nil {
			return err
		}
		url = u
	}
	var out []byte
	var err error
	switch c.Format {
	case "secret":
		out, err = render.KubernetesSecret(c.Name, c.Namespace, tok)
	case "helm-values":
		out, err = render.HelmValues(url, tok)
	default:
		out, err = render.ConfigTOML(render.Stanza{Name: c.Name, URL: url, Token: tok, Executor: c.Executor, RunnerID: c.RunnerID, SystemID: systemID})
	}
	if err != nil {
		return err
	}
	if c.File == "" {
		// stdout is the intended destination here: the caller pipes it into kubectl or helm.
		_, err = app.Stdout.Write(out)
		return err
	}
	if err := render.WriteFile(c.File, out); err != nil {
		return err
	}
	app.Log.Infof("wrote %s to %s (mode 0600)", c.Format, c.File)
	if systemID != "" {
		sidPath := filepath.Join(filepath.Dir(c.File), render.SystemIDFile)
		if err := render.WriteFile(sidPath, []byte(systemID+"\n")); err != nil {
			return err
		}
		app.Log.Infof("wrote system id %s to %s", systemID, sidPath)
	}
	if app.Output == "json" {
		return app.Printer().Print(renderResult{Format: c.Format, File: c.File, Mode: "0600"}, nil)
	}
	return nil
}
