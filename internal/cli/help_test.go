package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"
)

func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(t.Context(), Config{
		Args: args, Stdout: &out, Stderr: &errb, Version: "test",
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

// TestHelp golden-tests the root's and every command's --help, so a changed flag or wording is
// a reviewed diff (go test ./internal/cli -update rewrites the files). The commands come from
// kong's model of the CLI, so a new command cannot go without a golden, and a golden without a
// command fails too.
func TestHelp(t *testing.T) {
	parser, err := kong.New(&CLI{}, kong.Name("runner-bootstrap"), kong.Vars{"version": "test"})
	assert.NilError(t, err)
	cmds := [][]string{{}}
	for _, n := range parser.Model.Leaves(true) {
		cmds = append(cmds, strings.Fields(n.Path()))
	}
	assert.Check(t, len(cmds) > 5, "the model lists the commands")
	want := map[string]bool{}
	for _, cmd := range cmds {
		name := "help-root.golden"
		if len(cmd) > 0 {
			name = "help-" + strings.Join(cmd, "-") + ".golden"
		}
		want[name] = true
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, nil, append(cmd, "--help")...)
			assert.Equal(t, code, 0)
			assert.Equal(t, errOut, "")
			golden.Assert(t, out, name)
		})
	}
	files, err := filepath.Glob(filepath.Join("testdata", "help-*.golden"))
	assert.NilError(t, err)
	for _, f := range files {
		assert.Check(t, want[filepath.Base(f)], "%s belongs to no command: delete it", f)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, nil, "--version")
	assert.Equal(t, code, 0)
	assert.Equal(t, out, "test\n")
}

// TestNoCommandIsUsageError: no arguments print the usage, with each command and its summary,
// on stderr, and exit 2; help CMD is CMD --help.
func TestNoCommandIsUsageError(t *testing.T) {
	for _, args := range [][]string{nil, {"-o", "json"}} {
		code, out, errOut := run(t, nil, args...)
		assert.Equal(t, code, 2)
		assert.Check(t, is.Contains(errOut, "runner-bootstrap: no command given: runner-bootstrap <command> [flags], with one of the commands listed below.\n\nUsage: runner-bootstrap <command> [flags]"))
		for _, cmd := range []string{"create  ", "rotate  ", "status  ", "delete  ", "prune  ", "migrate  ", "render  ", "explain  ", "apply  ", "help  ", "completion  "} {
			assert.Check(t, is.Contains(errOut, "\n  "+cmd), "usage lists %s", cmd)
		}
		assert.Check(t, is.Contains(errOut, "Ensure a runner exists with the given attributes"))
		if len(args) > 0 {
			assert.Check(t, is.Contains(out, `"exit_code": 2`))
		} else {
			assert.Check(t, is.Equal(out, ""))
		}
	}
}

func TestHelpCommand(t *testing.T) {
	code, out, _ := run(t, nil, "help", "create")
	assert.Equal(t, code, 0)
	golden.Assert(t, out, "help-create.golden")
	code, out, _ = run(t, nil, "help")
	assert.Equal(t, code, 0)
	golden.Assert(t, out, "help-root.golden")
	code, _, errOut := run(t, nil, "help", "nosuch")
	assert.Equal(t, code, 2)
	assert.Check(t, is.Contains(errOut, `no help for "nosuch"`))
}

// TestNoGitLabURLOutsideCI: without --gitlab-url and $CI_SERVER_URL nothing is sent anywhere
// (the token is not even read); with --gitlab-url https://gitlab.com it is the user's choice.
func TestNoGitLabURLOutsideCI(t *testing.T) {
	env := map[string]string{"GITLAB_TOKEN": "glpat-abcdefghijklmnopqrst"}
	for _, args := range [][]string{{"create", "--project-id", "42"}, {"status", "--project-id", "42"}, {"prune", "--project-id", "42"}} {
		code, _, errOut := run(t, env, args...)
		assert.Check(t, is.Equal(code, 2), "%v", args)
		assert.Check(t, is.Contains(errOut, "runner-bootstrap: no GitLab URL: pass --gitlab-url https://gitlab.example.com (or --gitlab-url https://gitlab.com for GitLab.com), or run in a CI job, where $CI_SERVER_URL is set"), "%v", args)
	}
	code, _, errOut := run(t, map[string]string{"RUNNER_TOKEN": "glrt-t1_abcdefghijklmnopqrst"}, "render", "--format", "helm-values")
	assert.Check(t, is.Equal(code, 2))
	assert.Check(t, is.Contains(errOut, "no GitLab URL: pass --gitlab-url"), "render says the same as every command")
}

// TestDurations: every duration flag takes days, and a negative one gets one sentence.
func TestDurations(t *testing.T) {
	for _, args := range [][]string{
		{"status", "--project-id", "42", "--warn-within", "-7d"},
		{"rotate", "--project-id", "42", "--if-expiring-within", "-72h"},
		{"status", "--project-id", "42", "--timeout", "-1m"},
	} {
		code, _, errOut := run(t, nil, args...)
		assert.Check(t, is.Equal(code, 2), "%v", args)
		assert.Check(t, is.Equal(errOut, "runner-bootstrap: "+args[3]+" "+args[4]+" is negative: expected a duration such as 72h or 7d.\n"), "%v", args)
	}
	code, _, errOut := run(t, nil, "prune", "--project-id", "42", "--older-than=-30d")
	assert.Check(t, is.Equal(code, 2))
	assert.Check(t, is.Equal(errOut, "runner-bootstrap: --older-than -30d is negative: expected a duration such as 72h or 7d.\n"))
	// Days are accepted: the command gets as far as needing a GitLab URL.
	for _, args := range [][]string{{"status", "--project-id", "42", "--warn-within", "7d"}, {"rotate", "--project-id", "42", "--if-expiring-within", "72h"}, {"prune", "--project-id", "42", "--older-than", "30d"}} {
		code, _, errOut := run(t, nil, args...)
		assert.Check(t, is.Equal(code, 2), "%v", args)
		assert.Check(t, is.Contains(errOut, "no GitLab URL"), "%v", args)
	}
}

// TestBadInputNeedsNoToken: flag errors are reported before any token or network is needed.
func TestBadInputNeedsNoToken(t *testing.T) {
	code, _, errOut := run(t, nil, "create", "--project-id", "42", "--maximum-timeout", "10")
	assert.Equal(t, code, 2)
	assert.Check(t, is.Contains(errOut, "maximum timeout 10 is too short"))
	assert.Check(t, !strings.Contains(errOut, "GITLAB_TOKEN"))
}

func TestEnvironmentDefaults(t *testing.T) {
	// CI_SERVER_URL is used when --gitlab-url is absent; plain http to a remote host is refused.
	code, _, errOut := run(t, map[string]string{"CI_SERVER_URL": "http://gitlab.example.com", "GITLAB_TOKEN": "glpat-abcdefghijklmnopqrst"}, "create", "--project-id", "42")
	assert.Equal(t, code, 2)
	assert.Check(t, is.Contains(errOut, "GitLab URL http://gitlab.example.com uses plain http"))
}

// TestJSONErrors: with -o json a failure still prints one JSON object, with the sentence and
// the exit code, and no token.
func TestJSONErrors(t *testing.T) {
	code, out, errOut := run(t, map[string]string{"GITLAB_TOKEN": "glrt-t3_abcdefghijklmnopqrst", "CI_SERVER_URL": "https://gitlab.example.com"}, "create", "--project-id", "42", "-o", "json")
	assert.Equal(t, code, 2)
	assert.Check(t, is.Contains(errOut, "runner authentication token"))
	assert.Check(t, is.Equal(out, "{\n  \"error\": \"GITLAB_TOKEN holds a runner authentication token (glrt-), which cannot create runners or write CI/CD variables: expected a personal, group or project access token (glpat-) with the api and create_runner scopes.\",\n  \"exit_code\": 2\n}\n"))
	assert.Check(t, !strings.Contains(out, "abcdefghij"))
}

// TestRateLimitFlagAndEnvironment: --rate-limit wins over RUNNER_BOOTSTRAP_RATE_LIMIT, and a bad
// value of either is one sentence and exit code 2, before any token is needed.
func TestRateLimitFlagAndEnvironment(t *testing.T) {
	n, msg := resolveRateLimit(nil, func(string) string { return " 1800 " })
	assert.Check(t, is.Equal(n, 1800))
	assert.Check(t, is.Equal(msg, ""))
	zero := 0
	n, _ = resolveRateLimit(&zero, func(string) string { return "1800" })
	assert.Check(t, is.Equal(n, 0), "an explicit --rate-limit 0 wins")

	code, _, errOut := run(t, map[string]string{"RUNNER_BOOTSTRAP_RATE_LIMIT": "2k"}, "status", "--project-id", "42")
	assert.Equal(t, code, 2)
	assert.Check(t, is.Contains(errOut, `RUNNER_BOOTSTRAP_RATE_LIMIT is "2k": expected a whole number of requests per minute`))
	code, _, errOut = run(t, nil, "status", "--project-id", "42", "--rate-limit", "2000000")
	assert.Equal(t, code, 2)
	assert.Check(t, is.Contains(errOut, "--rate-limit 2000000 is out of range"))
}

// TestTypoGetsOneSentence: kong's suggestion ends in a question mark, not "?.".
func TestTypoGetsOneSentence(t *testing.T) {
	code, _, errOut := run(t, nil, "create", "--projectid", "42")
	assert.Equal(t, code, 2)
	assert.Check(t, is.Equal(errOut, "runner-bootstrap: unknown flag --projectid, did you mean \"--project-id\"?\n"))
}
