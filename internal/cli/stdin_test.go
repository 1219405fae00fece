package cli

import (
	"bytes"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// runStdin is run with stdin: what "-" reads comes from Config.Stdin, never the process's own.
func runStdin(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(t.Context(), Config{
		Args: args, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Version: "test",
		Getenv: func(string) string { return "" },
	})
	return code, out.String(), errb.String()
}

func TestExplainReadsConfigStdin(t *testing.T) {
	code, out, _ := runStdin(t, "glpat-"+strings.Repeat("x", 20)+"\n", "explain", "-")
	assert.Check(t, is.Equal(code, 0))
	assert.Check(t, is.Contains(out, "A personal, project or group access token"))
	assert.Check(t, !strings.Contains(out, strings.Repeat("x", 20)), "the token was printed: %s", out)
}

func TestApplyReadsTheManifestFromConfigStdin(t *testing.T) {
	// A manifest with a mistake: it is read from Config.Stdin and refused before any request.
	code, _, errOut := runStdin(t, "runners:\n  - project_id: 42\n    descriptoin: x\n", "apply", "--file", "-", "--dry-run")
	assert.Check(t, is.Equal(code, 2))
	assert.Check(t, is.Contains(errOut, "descriptoin"))
}

func TestNoStdinReadsNothing(t *testing.T) {
	code, _, errOut := run(t, nil, "explain", "-")
	assert.Check(t, is.Equal(code, 2))
	assert.Check(t, is.Contains(errOut, "nothing to explain"))
}
