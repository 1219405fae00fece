package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// readmeBlock is a fenced block of the README, with the HTML comment just above it.
type readmeBlock struct {
	line   int
	lang   string
	marker string
	body   string
}

var fenceRE = regexp.MustCompile("(?m)^(?:<!-- (.*?) -->\n)?```([a-z]*)\n((?s:.*?))^```\n")

func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	assert.NilError(t, err)
	var out []readmeBlock
	for _, m := range fenceRE.FindAllSubmatchIndex(raw, -1) {
		b := readmeBlock{line: 1 + strings.Count(string(raw[:m[0]]), "\n"), lang: string(raw[m[4]:m[5]]), body: string(raw[m[6]:m[7]])}
		if m[2] >= 0 {
			b.marker = string(raw[m[2]:m[3]])
		}
		out = append(out, b)
	}
	return out
}

// TestReadmeShellExamplesRunInOrder runs every sh block of the README, in order, in one bash
// with set -e, the way a new user pastes them: the built binary on PATH, the fake GitLab in
// place of https://gitlab.example.com, the access token typed at the read prompt. A block
// marked <!-- file: NAME --> is written to NAME first (the manifest apply reads); one marked
// <!-- not run: why --> is skipped and says why. A broken chain (a rotate that looks for
// another variable than create stored) fails here.
func TestReadmeShellExamplesRunInOrder(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	ran := 0
	for _, b := range readmeBlocks(t) {
		switch {
		case strings.HasPrefix(b.marker, "file: "):
			name := strings.TrimPrefix(b.marker, "file: ")
			fmt.Fprintf(&script, "cat > %q <<'README_EOF'\n%sREADME_EOF\n", name, b.body)
		case b.lang != "sh":
		case strings.HasPrefix(b.marker, "not run: "):
			t.Logf("README.md:%d not run: %s", b.line, strings.TrimPrefix(b.marker, "not run: "))
		default:
			fmt.Fprintf(&script, "echo '# README.md:%d' >&2\n%s", b.line, b.body)
			ran++
		}
	}
	assert.Assert(t, ran >= 6, "only %d runnable blocks found", ran)
	dir := t.TempDir()
	text := strings.ReplaceAll(script.String(), "https://gitlab.example.com", tg.url)
	path := filepath.Join(dir, "readme.sh")
	assert.NilError(t, os.WriteFile(path, []byte(text), 0o600))

	// A clean environment: no CI variables, so the examples must name the GitLab themselves.
	env := []string{"PATH=" + filepath.Dir(binary) + ":" + os.Getenv("PATH"), "HOME=" + dir}
	res := icmd.RunCmd(icmd.Command("bash", path), icmd.Dir(dir), icmd.WithEnv(env...), icmd.WithStdin(strings.NewReader(tg.seed.OwnerToken+"\n")))
	tg.assertNoSecrets(t, res.Stdout()+res.Stderr())
	res.Assert(t, icmd.Success)

	// What the examples promise happened: the create example's variable exists and records a
	// runner, its dotenv report was written, and apply brought the runner to the manifest.
	env2, err := os.ReadFile(filepath.Join(dir, "runner.env"))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(env2), "RUNNER_BOOTSTRAP_VARIABLE_KEY=DEPLOY_RUNNER_TOKEN\n"))
	v, ok := tg.fake.Variable("project", 42, "DEPLOY_RUNNER_TOKEN", "*")
	assert.Assert(t, ok, "the create example stored no DEPLOY_RUNNER_TOKEN")
	assert.Check(t, is.Contains(v.Description, "managed by runner-bootstrap; runner_id="))
	assert.Check(t, is.Contains(res.Stdout(), "dry run: nothing was changed"))
	assert.Check(t, is.Contains(res.Stdout(), "changes: maximum_timeout 3600 → none"), "the plan says what the manifest resets, as the README says")
	assert.Check(t, is.Contains(res.Stdout(), `"variable_key": "DEPLOY_RUNNER_TOKEN"`), "status found the variable create stored")
}
