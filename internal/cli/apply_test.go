package cli

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

func writeManifest(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fleet.yaml")
	assert.NilError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// TestApplyBadInputNeedsNoToken: flags and the manifest are checked before any token or
// network is needed, with exit code 2.
func TestApplyBadInputNeedsNoToken(t *testing.T) {
	good := writeManifest(t, "runners:\n  - project_id: 42\n")
	bad := writeManifest(t, "runners:\n  - project_id: 42\n    maximum_timeout: 300\n")
	cases := []struct {
		args []string
		env  map[string]string
		msg  string
	}{
		{[]string{"apply"}, nil, "missing flags: --file=FILE"},
		{[]string{"apply", "-f", bad}, nil, bad + ":3: runners[0].maximum_timeout is 300: GitLab needs at least 600 seconds"},
		{[]string{"apply", "-f", good, "--concurrency", "0"}, nil, "--concurrency 0 is out of range: expected 1 to 32"},
		{[]string{"apply", "-f", good, "--shard", "4/3"}, nil, "--shard 4/3 is out of range"},
		{[]string{"apply", "-f", good, "--prune", "--shard", "2/3"}, nil, "--prune cannot run in shard 2/3"},
		{[]string{"apply", "-f", good, "--prune"}, map[string]string{"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2"}, "--prune cannot run in shard 1/2"},
		{[]string{"apply", "-f", good}, map[string]string{"CI_NODE_INDEX": "3"}, "set both"},
	}
	for _, tc := range cases {
		code, out, errOut := run(t, tc.env, tc.args...)
		assert.Check(t, is.Equal(code, 2), "%v: %s", tc.args, errOut)
		assert.Check(t, is.Contains(errOut, tc.msg))
		assert.Check(t, is.Equal(out, ""))
		assert.Check(t, !strings.Contains(errOut, "GITLAB_TOKEN"))
	}
}

type applyJSON struct {
	File string `json:"file"`
	Plan []struct {
		Entry  string `json:"entry"`
		Action string `json:"action"`
		Result string `json:"result"`
		Error  string `json:"error"`
	} `json:"plan"`
	Summary struct {
		DryRun  bool           `json:"dry_run"`
		Shard   string         `json:"shard"`
		Entries int            `json:"entries"`
		Planned map[string]int `json:"planned"`
		Results map[string]int `json:"results"`
		Failed  int            `json:"failed"`
	} `json:"summary"`
}

func TestApplyAgainstFake(t *testing.T) {
	fake, seed := gitlabfake.NewTest(t)
	env := map[string]string{"GITLAB_TOKEN": seed.OwnerToken, "CI_SERVER_URL": seed.URL}
	var b strings.Builder
	b.WriteString("runners:\n")
	for _, k := range []string{"A", "B", "C", "D", "E", "F"} {
		b.WriteString("  - project_id: platform/deploy\n    variable: {key: " + k + "}\n")
	}
	path := writeManifest(t, b.String())

	// The shard comes from CI_NODE_INDEX/CI_NODE_TOTAL (1-based) when --shard is not given.
	shardEnv := map[string]string{"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}
	maps.Copy(shardEnv, env)
	code, out, errOut := run(t, shardEnv, "apply", "-f", path, "--dry-run", "-o", "json")
	assert.Assert(t, is.Equal(code, 0), errOut)
	var got applyJSON
	assert.NilError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Check(t, is.Equal(got.Summary.Shard, "2/3"))
	assert.Check(t, got.Summary.DryRun)
	assert.Check(t, got.Summary.Entries < 6)
	assert.Check(t, is.Equal(fake.Writes(), 0))

	code, out, errOut = run(t, env, "apply", "-f", path)
	assert.Assert(t, is.Equal(code, 0), errOut)
	assert.Check(t, is.Contains(out, "ENTRY"))
	assert.Check(t, is.Contains(out, "applied: 6 created, 0 updated, 0 replaced, 0 unchanged, 0 deleted, 0 failed"))
	assert.Check(t, is.Contains(errOut, "apply finished in"))
	assert.Check(t, !strings.Contains(out+errOut, "glrt-"))

	code, out, _ = run(t, env, "apply", "-f", path, "-o", "json")
	assert.Check(t, is.Equal(code, 0))
	got = applyJSON{}
	assert.NilError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Check(t, is.Equal(got.Summary.Results["unchanged"], 6))
	assert.Check(t, is.Len(got.Plan, 6))

	// One entry that cannot be applied: exit 1, the others still reported.
	bad := writeManifest(t, b.String()+"  - project_id: platform/nope\n")
	code, out, errOut = run(t, env, "apply", "-f", bad, "-o", "json")
	assert.Check(t, is.Equal(code, 1))
	assert.Check(t, is.Contains(errOut, "1 of 7 plan items failed; the others were applied"))
	got = applyJSON{}
	assert.NilError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Check(t, is.Equal(got.Summary.Failed, 1))
	assert.Check(t, is.Equal(got.Plan[6].Result, "failed"))
	assert.Check(t, is.Contains(got.Plan[6].Error, "platform/nope was not found"))
}
