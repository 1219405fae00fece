// Package cli is runner-bootstrap's command line: one file per command, each translating its
// flags into a spec, calling internal/lifecycle and printing the result.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/sirupsen/logrus"
	"github.com/willabides/kongplete"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/output"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/progress"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/readlimit"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// Config is the seam between main and the program: tests drive the real parser with their own
// arguments, writers and environment.
type Config struct {
	Args []string
	// Stdin is what "-" reads (apply -f -, migrate, explain); nil reads nothing.
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Getenv  func(string) string
	Version string
}

// CLI is the root of the command tree.
type CLI struct {
	Version kong.VersionFlag `help:"Print the version and exit."`

	Create CreateCmd `cmd:"" help:"Ensure a runner exists with the given attributes and its token is stored in a CI/CD variable."`
	Rotate RotateCmd `cmd:"" help:"Reset a runner's token and store the new one in its variable (for scheduled pipelines)."`
	Status StatusCmd `cmd:"" help:"Show the runner behind a variable, its managers and token expiry; the exit code says if action is needed."`
	Check  CheckCmd  `cmd:"" help:"Say, reading only, whether this access token can create, store, rotate and delete here, and what this GitLab does differently."`
	Delete DeleteCmd `cmd:"" help:"Delete the runner behind a variable and the variable."`
	Prune  PruneCmd  `cmd:"" help:"Delete runners this tool created that no variable references any more, or that are stale."`
	Adopt  AdoptCmd  `cmd:"" help:"Take over a runner created in the UI: reset its token, mark it and store the new token in a CI/CD variable, as create would have."`

	Migrate MigrateCmd `cmd:"" help:"Create the runner a legacy Helm values file or register command described, store its token, and print the migrated configuration."`
	Render  RenderCmd  `cmd:"" help:"Write the runner token from the job's environment as a Kubernetes Secret, Helm values or a config.toml stanza (for deploy jobs)."`
	Explain ExplainCmd `cmd:"" help:"Say what a token or a GitLab/gitlab-runner error message is and what to do."`
	Apply   ApplyCmd   `cmd:"" help:"Ensure every runner of a fleet manifest (fleet.yaml) exists as written, with bounded concurrency; --dry-run prints the plan."`
	Audit   AuditCmd   `cmd:"" help:"Report what in a group, project or the instance still depends on registration tokens and which runners and token variables need attention (reads only)."`

	Help       HelpCmd       `cmd:"" help:"Show the help of a command: runner-bootstrap help create is runner-bootstrap create --help."`
	Completion CompletionCmd `cmd:"" help:"Print the shell completion script for bash, zsh or fish: eval \"$$(runner-bootstrap completion bash)\"."`

	// Globals come last so that each command's own flags lead its --help.
	Globals
}

// Globals are the connection, output and logging flags of every command.
type Globals struct {
	GitlabURL      string            `name:"gitlab-url" group:"connection" placeholder:"URL" help:"GitLab base URL, e.g. https://gitlab.com; /api/v4 is appended (default: $$CI_SERVER_URL in CI jobs; required elsewhere)."`
	TokenFile      string            `name:"token-file" group:"connection" placeholder:"PATH" predictor:"file" help:"Read the access token from this file instead of $$GITLAB_TOKEN (never pass a token as a flag value)."`
	CAFile         string            `name:"ca-file" group:"connection" placeholder:"PATH" predictor:"file" help:"PEM bundle to trust for a self-managed GitLab (default: $$CI_SERVER_TLS_CA_FILE)."`
	InsecureHTTP   bool              `name:"insecure-http" group:"connection" help:"Allow a plain http:// GitLab URL that is not loopback (sends the token unencrypted)."`
	Output         string            `name:"output" group:"output" short:"o" enum:"text,json" default:"text" help:"Result format on stdout: text or json (one object, never a token)."`
	LogLevel       string            `name:"log-level" group:"output" enum:"trace,debug,info,warn,error" default:"info" help:"Log level on stderr: trace, debug, info, warn or error."`
	LogFormat      string            `name:"log-format" group:"output" enum:"text,json" default:"text" help:"Log format on stderr: text or json."`
	Timeout        duration.Duration `name:"timeout" group:"connection" default:"5m" help:"Give up on the whole command after this long."`
	RequestTimeout duration.Duration `name:"request-timeout" group:"connection" default:"30s" help:"Give up on one HTTP request after this long (it is retried if safe)."`
	MaxRetries     int               `name:"max-retries" group:"connection" default:"5" help:"Retries of a request GitLab answered with 429 or 5xx, or that failed before an answer (never a POST that may have been carried out)."`
	RateLimit      *int              `name:"rate-limit" group:"connection" placeholder:"N" help:"Requests per minute to spend when GitLab sends no RateLimit-* headers (with them, GitLab's figures win); 0: no limit of its own. GitLab.com allows 2000 per user. Default: $$RUNNER_BOOTSTRAP_RATE_LIMIT, else 0."`
}

// App is what commands get at run time.
type App struct {
	Globals
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	Log    *logrus.Logger
	// Ctx is cancelled after --timeout.
	Ctx context.Context

	redactor  *token.Redactor
	once      sync.Once
	client    *gitlab.Client
	clientErr error
	rateLimit int // --rate-limit, else $RUNNER_BOOTSTRAP_RATE_LIMIT
	// NewAPI builds the GitLab client; tests may replace it.
	newAPI func(gitlab.Config) (*gitlab.Client, error)
}

// Printer returns the stdout printer for --output.
func (a *App) Printer() output.Printer {
	return output.Printer{W: a.Stdout, Format: output.Format(a.Output)}
}

// Client connects to GitLab on first use, so that bad flags are reported without a token.
func (a *App) Client() (*gitlab.Client, error) {
	a.once.Do(func() {
		url, err := a.gitlabURL()
		if err != nil {
			a.clientErr = err
			return
		}
		tok, err := a.accessToken()
		if err != nil {
			a.clientErr = err
			return
		}
		a.redactor.Add(tok)
		ca := a.CAFile
		if ca == "" {
			ca = a.Getenv("CI_SERVER_TLS_CA_FILE")
		}
		a.client, a.clientErr = a.newAPI(gitlab.Config{
			BaseURL: url, Token: tok, CAFile: ca, InsecureHTTP: a.InsecureHTTP,
			RequestTimeout: a.RequestTimeout.D(), Log: a.Log, UserAgent: "runner-bootstrap",
			RetryMax: a.MaxRetries, NoRetries: a.MaxRetries == 0, RateLimit: a.rateLimit,
		})
	})
	return a.client, a.clientErr
}

// Progress starts reporting a long command's items on stderr: a bar on a terminal, a line per
// item otherwise, inside a collapsible section in a GitLab CI job (see internal/progress).
func (a *App) Progress(name, title string, total int) *progress.Task {
	return progress.Start(a.progressOptions(), name, title, total)
}

func (a *App) progressOptions() progress.Options {
	return progress.For(a.Stderr, a.Getenv, a.Log, a.LogFormat)
}

// Service returns the lifecycle service over the GitLab client.
func (a *App) Service() (*lifecycle.Service, error) {
	c, err := a.Client()
	if err != nil {
		return nil, err
	}
	return lifecycle.New(c, a.Log), nil
}

// gitlabURL is --gitlab-url, else $CI_SERVER_URL (set in every CI job). There is no silent
// default beyond that: an access token meant for a self-managed instance must never travel to
// gitlab.com because a flag was forgotten, so GitLab.com users say so with --gitlab-url.
func (a *App) gitlabURL() (string, error) {
	if a.GitlabURL != "" {
		return a.GitlabURL, nil
	}
	if u := a.Getenv("CI_SERVER_URL"); u != "" {
		return u, nil
	}
	return "", fail.Usagef("no GitLab URL: pass --gitlab-url https://gitlab.example.com (or --gitlab-url https://gitlab.com for GitLab.com), or run in a CI job, where $CI_SERVER_URL is set; outside CI runner-bootstrap does not assume gitlab.com, so a self-managed instance's access token is never sent there")
}

// accessToken reads GITLAB_TOKEN or --token-file and refuses the wrong kinds of token.
func (a *App) accessToken() (string, error) {
	tok := a.Getenv("GITLAB_TOKEN")
	if a.TokenFile != "" {
		st, err := os.Stat(a.TokenFile)
		if err != nil {
			return "", fail.Usagef("cannot read --token-file %s: %v", a.TokenFile, fail.PathCause(err))
		}
		if st.IsDir() {
			return "", fail.Usagef("--token-file %s is a directory: expected a file holding the access token", a.TokenFile)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return "", fail.Usagef("--token-file %s can be read or written by users other than its owner (mode %04o): restrict it, e.g. chmod 600 %s", a.TokenFile, st.Mode().Perm(), a.TokenFile)
		}
		b, err := readlimit.ReadFile(a.Ctx, "--token-file", a.TokenFile, readlimit.TokenFile)
		if err != nil {
			return "", err
		}
		tok = strings.TrimRight(string(b), "\r\n")
	}
	if err := token.CheckAccessToken(tok, a.Getenv("CI_JOB_TOKEN")); err != nil {
		return "", err
	}
	return tok, nil
}

// exitPanic carries kong's exit code (after --help or --version) out of the parser.
type exitPanic struct{ code int }

// Run parses the arguments, runs the command and returns the process exit code.
func Run(ctx context.Context, cfg Config) (code int) {
	if cfg.Getenv == nil {
		cfg.Getenv = func(string) string { return "" }
	}
	if cfg.Stdin == nil {
		cfg.Stdin = strings.NewReader("")
	}
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("runner-bootstrap"),
		kong.Description("Create GitLab runners, store their authentication tokens as masked, hidden CI/CD variables, and keep them rotated.\n\nThe access token comes from $GITLAB_TOKEN (or --token-file): a personal, group or project access token with the api and create_runner scopes."),
		kong.Writers(cfg.Stdout, cfg.Stderr),
		kong.Exit(func(c int) { panic(exitPanic{c}) }),
		kong.Vars{"version": cfg.Version},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true}),
		kong.ExplicitGroups([]kong.Group{
			{Key: "runner", Title: "Runner"},
			{Key: "variable", Title: "Variable that holds the token"},
			{Key: "connection", Title: "Connection (access token: $GITLAB_TOKEN or --token-file)"},
			{Key: "output", Title: "Output and logs"},
		}),
	)
	if err != nil {
		fmt.Fprintf(cfg.Stderr, "runner-bootstrap: internal error: %v\n", err)
		return fail.CodeFailure
	}
	defer func() {
		if r := recover(); r != nil {
			ep, ok := r.(exitPanic)
			if !ok {
				panic(r)
			}
			code = ep.code
		}
	}()
	if cfg.Getenv("COMP_LINE") != "" {
		// The shell asks for completions (see help.go): answer and exit.
		kongplete.Complete(parser, kongplete.WithPredictor("file", complete.PredictFiles("*")))
	}
	kctx, err := parser.Parse(cfg.Args)
	if err != nil {
		// A misplaced token in the arguments must not be echoed back.
		msg := sentence(token.Redact(parseError(err)))
		var pe *kong.ParseError
		noCommand := errors.As(err, &pe) && pe.Context != nil && pe.Context.Selected() == nil
		if noCommand {
			msg = "no command given: runner-bootstrap <command> [flags], with one of the commands listed below."
		}
		fmt.Fprintf(cfg.Stderr, "runner-bootstrap: %s\n", msg)
		if noCommand {
			// Show what the commands are, as --help would, on stderr.
			parser.Stdout = cfg.Stderr
			fmt.Fprintln(cfg.Stderr)
			_ = pe.Context.PrintUsage(false)
		}
		if wantsJSON(cfg.Args) {
			_ = output.Printer{W: cfg.Stdout, Format: output.JSON}.Print(jsonError{msg, fail.CodeUsage}, nil)
		}
		return fail.CodeUsage
	}
	if cli.MaxRetries < 0 || cli.MaxRetries > 20 {
		fmt.Fprintf(cfg.Stderr, "runner-bootstrap: --max-retries %d is out of range: expected 0 to 20.\n", cli.MaxRetries)
		return fail.CodeUsage
	}
	rateLimit, msg := resolveRateLimit(cli.RateLimit, cfg.Getenv)
	if msg != "" {
		fmt.Fprintf(cfg.Stderr, "runner-bootstrap: %s\n", msg)
		return fail.CodeUsage
	}
	if cli.Timeout <= 0 || cli.RequestTimeout <= 0 {
		fmt.Fprintf(cfg.Stderr, "runner-bootstrap: --timeout and --request-timeout must be positive durations such as 5m and 30s.\n")
		return fail.CodeUsage
	}

	stdout := &countingWriter{w: cfg.Stdout}
	app := &App{Globals: cli.Globals, Stdin: cfg.Stdin, Stdout: stdout, Stderr: cfg.Stderr, Getenv: cfg.Getenv, redactor: &token.Redactor{}, newAPI: gitlab.New, rateLimit: rateLimit}
	app.redactor.Add(cfg.Getenv("CI_JOB_TOKEN"))
	app.Log = newLogger(cfg.Stderr, app.LogLevel, app.LogFormat, app.redactor)
	c, cancel := context.WithTimeout(ctx, app.Timeout.D())
	defer cancel()
	app.Ctx = c

	if err := kctx.Run(app); err != nil {
		msg := sentence(app.redactor.Redact(err.Error()))
		code := fail.Code(err)
		if app.LogFormat == "json" {
			// Log collectors parse every stderr line as JSON: the final error is one more entry.
			app.Log.WithField("exit_code", code).Error(msg)
		} else {
			fmt.Fprintf(cfg.Stderr, "runner-bootstrap: %s\n", msg)
		}
		if app.Output == "json" && stdout.n == 0 {
			// Scripts reading -o json always get one object, failures included.
			_ = app.Printer().Print(jsonError{msg, code}, nil)
		}
		return code
	}
	return fail.CodeOK
}

type jsonError struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
}

// parseError is the sentence for a parser error: a bad duration says itself what was wrong
// (kong would lead it with "--flag=DURATION:").
func parseError(err error) string {
	if de, ok := errors.AsType[*duration.Error](err); ok {
		return de.Error()
	}
	return err.Error()
}

// wantsJSON finds -o json in arguments the parser refused.
func wantsJSON(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--output=json" || a == "-ojson" || a == "-o=json":
			return true
		case (a == "-o" || a == "--output") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}

// countingWriter remembers whether a command printed its result.
type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

func newLogger(w io.Writer, level, format string, r *token.Redactor) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(w)
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		lv = logrus.InfoLevel
	}
	l.SetLevel(lv)
	var inner logrus.Formatter = &logrus.TextFormatter{DisableTimestamp: false, FullTimestamp: true, DisableColors: true}
	if format == "json" {
		inner = &logrus.JSONFormatter{}
	}
	l.SetFormatter(&token.Formatter{Inner: inner, Redactor: r})
	return l
}

// sentence ends a message with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s != "" && !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") {
		s += "."
	}
	return s
}

// maxRateLimit bounds --rate-limit: far above any GitLab's throttle, low enough to be a typo.
const maxRateLimit = 1_000_000

// resolveRateLimit is --rate-limit, else $RUNNER_BOOTSTRAP_RATE_LIMIT, else 0; msg says what
// is wrong with the value given.
func resolveRateLimit(flag *int, getenv func(string) string) (n int, msg string) {
	what := "--rate-limit"
	if flag != nil {
		n = *flag
	} else if v := strings.TrimSpace(getenv("RUNNER_BOOTSTRAP_RATE_LIMIT")); v != "" {
		what = "RUNNER_BOOTSTRAP_RATE_LIMIT"
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			return 0, fmt.Sprintf("%s is %q: expected a whole number of requests per minute, such as 2000 (GitLab.com's limit), or 0 for no limit of its own.", what, v)
		}
	}
	if n < 0 || n > maxRateLimit {
		return 0, fmt.Sprintf("%s %d is out of range: expected 0 to %d requests per minute (GitLab.com allows 2000).", what, n, maxRateLimit)
	}
	return n, ""
}
