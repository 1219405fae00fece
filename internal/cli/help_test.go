package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"
)

func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), Config{
		Args: args, Stdout: &out, Stderr: &errb, Version: "test",
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

// TestHelp golden-tests every command's --help, so a changed flag or wording is a reviewed diff
// (go test ./internal/cli -update rewrites the files).
func TestHelp(t *testing.T) {
	for _, cmd := range [][]string{{}, {"create"}, {"rotate"}, {"status"}, {"delete"}, {"prune"}, {"migrate"}, {"render"}, {"explain"}, {"apply"}} {
		name := "help-root.golden"
		if len(cmd) > 0 {
			name = "help-" + cmd[0] + ".golden"
		}
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, nil, append(cmd, "--help")...)
			assert.Equal(t, code, 0)
			assert.Equal(t, errOut, "")
			golden.Assert(t, out, name)
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, nil, "--version")
	assert.Equal(t, code, 0)
	assert.Equal(t, out, "test\n")
}

func TestNoCommandIsUsageError(t *testing.T) {
	code, _, errOut := run(t, nil)
	assert.Equal(t, code, 2)
	assert.Check(t, is.Contains(errOut, "runner-bootstrap: expected one of"))
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
	code, out, errOut := run(t, map[string]string{"GITLAB_TOKEN": "glrt-t3_abcdefghijklmnopqrst"}, "create", "--project-id", "42", "-o", "json")
	assert.Equal(t, code, 2)
	assert.Check(t, is.Contains(errOut, "runner authentication token"))
	assert.Check(t, is.Equal(out, "{\n  \"error\": \"GITLAB_TOKEN holds a runner authentication token (glrt-), which cannot create runners or write CI/CD variables: expected a personal, group or project access token (glpat-) with the api and create_runner scopes.\",\n  \"exit_code\": 2\n}\n"))
	assert.Check(t, !strings.Contains(out, "abcdefghij"))
}
