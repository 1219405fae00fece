package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

type result struct {
	Action           string   `json:"action"`
	RunnerID         int64    `json:"runner_id"`
	RunnerType       string   `json:"runner_type"`
	PreviousRunnerID int64    `json:"previous_runner_id"`
	VariableKey      string   `json:"variable_key"`
	VariableOwner    string   `json:"variable_owner"`
	VariableOwnerID  int64    `json:"variable_owner_id"`
	TokenExpiresAt   *string  `json:"token_expires_at"`
	Changes          []string `json:"changes"`
	Notes            []string `json:"notes"`
}

func decode(t *testing.T, r *icmd.Result) result {
	t.Helper()
	var out result
	assert.NilError(t, json.Unmarshal([]byte(r.Stdout()), &out), "stdout: %s\nstderr: %s", r.Stdout(), r.Stderr())
	return out
}

// storedOK asserts the invariant on the fake: the variable holds its recorded runner's token.
func (tg *target) storedOK(t *testing.T, owner string, ownerID int64, key, scope string, runnerID int64) {
	t.Helper()
	if tg.fake == nil {
		return
	}
	v, ok := tg.fake.Variable(owner, ownerID, key, scope)
	assert.Assert(t, ok, "variable %s/%d/%s missing", owner, ownerID, key)
	r, ok := tg.fake.Runner(runnerID)
	assert.Assert(t, ok, "runner %d missing", runnerID)
	assert.Assert(t, v.Value == r.Token, "variable does not hold runner %d's token", runnerID)
	assert.Check(t, is.Contains(v.Description, "runner_id="))
}

func TestCreateProjectRunnerRerunAndDrift(t *testing.T) {
	tg := newTarget(t)
	tok := tg.seed.MaintainerToken
	tg.deleteAfter(t, "--project-id", deployProject())
	args := []string{"create", "--output", "json", "--project-id", deployProject(), "--description", "e2e deploy", "--tag-list", "docker,linux"}

	r := tg.run(t, tok, nil, args...)
	r.Assert(t, icmd.Success)
	first := decode(t, r)
	assert.Check(t, is.Equal(first.Action, "created"))
	assert.Check(t, is.Equal(first.RunnerType, "project_type"))
	assert.Check(t, is.Equal(first.VariableKey, "RUNNER_TOKEN"))
	assert.Check(t, is.Equal(first.VariableOwner, "project"))
	assert.Check(t, first.RunnerID > 0)
	tg.storedOK(t, "project", tg.seed.DeployProjectID, "RUNNER_TOKEN", "*", first.RunnerID)
	if tg.fake != nil {
		v, _ := tg.fake.Variable("project", tg.seed.DeployProjectID, "RUNNER_TOKEN", "*")
		assert.Check(t, v.Masked && v.Hidden && v.Protected, "%+v", v)
	}

	writes := tg.writes()
	r = tg.run(t, tok, nil, args...)
	r.Assert(t, icmd.Success)
	again := decode(t, r)
	assert.Check(t, is.Equal(again.Action, "unchanged"))
	assert.Check(t, is.Equal(again.RunnerID, first.RunnerID))
	assert.Check(t, is.Equal(tg.writes(), writes), "a re-run must not write")

	r = tg.run(t, tok, nil, append(args[:len(args)-1], "docker,linux,arm64", "--locked")...)
	r.Assert(t, icmd.Success)
	drift := decode(t, r)
	assert.Check(t, is.Equal(drift.Action, "updated"))
	assert.Check(t, is.Equal(drift.RunnerID, first.RunnerID))
	assert.Check(t, is.DeepEqual(drift.Changes, []string{"tag_list", "locked"}))
	tg.storedOK(t, "project", tg.seed.DeployProjectID, "RUNNER_TOKEN", "*", first.RunnerID)
}

func TestCreateTextOutputIsReadable(t *testing.T) {
	tg := newTarget(t)
	tg.deleteAfter(t, "--project-id", deployProject())
	r := tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", deployProject())
	r.Assert(t, icmd.Expected{ExitCode: 0, Out: "created project_type runner"})
	assert.Check(t, is.Contains(r.Stdout(), "token stored in project "+deployProject()+" variable RUNNER_TOKEN (scope *): masked, hidden, protected"))
	assert.Check(t, is.Contains(r.Stdout(), "token expires: never"))
	assert.Check(t, is.Contains(r.Stderr(), "level=info"))
}

func TestCreateReplacesDeletedRunner(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	first := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42"))
	tg.fake.DeleteRunnerDirect(first.RunnerID)
	r := tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42")
	r.Assert(t, icmd.Success)
	got := decode(t, r)
	assert.Check(t, is.Equal(got.Action, "replaced"))
	assert.Check(t, is.Equal(got.PreviousRunnerID, first.RunnerID))
	assert.Check(t, is.Contains(r.Stderr(), "no longer exists"))
	tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", got.RunnerID)
	assert.Check(t, is.Len(tg.fake.Runners(), 1))
}

func TestCreateEachRunnerTypeAndVariableOwner(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	cases := []struct {
		name       string
		tok        string
		args       []string
		owner      string
		ownerID    int64
		key, scope string
		check      func(t *testing.T)
	}{
		{
			name: "group runner, variable in its group", tok: tg.seed.OwnerToken,
			args:  []string{"--runner-type", "group_type", "--group-id", "platform", "--variable-key", "GROUP_RUNNER"},
			owner: "group", ownerID: tg.seed.PlatformGroupID, key: "GROUP_RUNNER", scope: "*",
		},
		{
			name: "group runner by id, variable in a project, scoped, file type, not protected", tok: tg.seed.OwnerToken,
			args: []string{"--runner-type", "group_type", "--group-id", "11", "--variable-project", "platform/runners/fleet",
				"--variable-key", "FLEET", "--variable-environment-scope", "production", "--variable-type", "file", "--no-variable-protected"},
			owner: "project", ownerID: tg.seed.FleetProjectID, key: "FLEET", scope: "production",
			check: func(t *testing.T) {
				v, _ := tg.fake.Variable("project", tg.seed.FleetProjectID, "FLEET", "production")
				assert.Check(t, is.Equal(v.VariableType, "file"))
				assert.Check(t, !v.Protected)
				assert.Check(t, v.Hidden)
			},
		},
		{
			name: "project runner, variable in a group, not hidden", tok: tg.seed.OwnerToken,
			args:  []string{"--project-id", "platform/runners/fleet", "--variable-group", "platform/runners", "--variable-key", "FLEET_TOKEN", "--no-variable-hidden"},
			owner: "group", ownerID: tg.seed.RunnersSubgroupID, key: "FLEET_TOKEN", scope: "*",
			check: func(t *testing.T) {
				v, _ := tg.fake.Variable("group", tg.seed.RunnersSubgroupID, "FLEET_TOKEN", "*")
				assert.Check(t, v.Masked && !v.Hidden)
			},
		},
		{
			name: "instance runner, instance variable", tok: tg.seed.AdminToken,
			args:  []string{"--runner-type", "instance_type", "--variable-instance", "--variable-key", "SHARED", "--paused", "--access-level", "ref_protected", "--maximum-timeout", "3600", "--maintenance-note", "shared fleet"},
			owner: "instance", key: "SHARED", scope: "*",
			check: func(t *testing.T) {
				v, _ := tg.fake.Variable("instance", 0, "SHARED", "*")
				assert.Check(t, v.Masked && !v.Hidden)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tg.run(t, tc.tok, nil, append([]string{"create", "-o", "json"}, tc.args...)...)
			r.Assert(t, icmd.Success)
			got := decode(t, r)
			assert.Check(t, is.Equal(got.Action, "created"))
			tg.storedOK(t, tc.owner, tc.ownerID, tc.key, tc.scope, got.RunnerID)
			if tc.check != nil {
				tc.check(t)
			}
			again := decode(t, tg.run(t, tc.tok, nil, append([]string{"create", "-o", "json"}, tc.args...)...))
			assert.Check(t, is.Equal(again.Action, "unchanged"))
		})
	}
	runner, _ := tg.fake.Runner(decode(t, tg.run(t, tg.seed.AdminToken, nil, "create", "-o", "json", "--runner-type", "instance_type", "--variable-instance", "--variable-key", "SHARED", "--paused", "--access-level", "ref_protected", "--maximum-timeout", "3600", "--maintenance-note", "shared fleet")).RunnerID)
	assert.Check(t, runner.Paused && runner.AccessLevel == "ref_protected" && runner.MaximumTimeout == 3600)
	assert.Check(t, is.Contains(runner.MaintenanceNote, "shared fleet\n[runner-bootstrap]"))
}

func TestCreateDotenvHoldsFactsNotToken(t *testing.T) {
	tg := newTarget(t)
	path := filepath.Join(t.TempDir(), "runner.env")
	tg.deleteAfter(t, "--project-id", deployProject())
	r := tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", deployProject(), "--dotenv", path)
	r.Assert(t, icmd.Success)
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	tg.assertNoSecrets(t, string(b))
	for _, k := range []string{"RUNNER_BOOTSTRAP_ACTION=created", "RUNNER_BOOTSTRAP_RUNNER_ID=", "RUNNER_BOOTSTRAP_VARIABLE_KEY=RUNNER_TOKEN", "RUNNER_BOOTSTRAP_RUNNER_TYPE=project_type", "RUNNER_BOOTSTRAP_TOKEN_EXPIRES_AT=", "RUNNER_BOOTSTRAP_ENVIRONMENT_SCOPE=*\n"} {
		assert.Check(t, is.Contains(string(b), k))
	}

	// The same facts as the JSON: every top-level scalar of -o json is a line of the dotenv.
	r = tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", deployProject(), "--variable-environment-scope", "review/*", "--variable-key", "REVIEW_TOKEN", "-o", "json", "--dotenv", path)
	r.Assert(t, icmd.Success)
	var js map[string]any
	assert.NilError(t, json.Unmarshal([]byte(r.Stdout()), &js))
	b, err = os.ReadFile(path)
	assert.NilError(t, err)
	env := map[string]string{}
	for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	assert.Check(t, is.Equal(env["RUNNER_BOOTSTRAP_ENVIRONMENT_SCOPE"], "review/*"))
	for k, v := range js {
		switch v.(type) {
		case string, float64, bool:
			assert.Check(t, is.Equal(env["RUNNER_BOOTSTRAP_"+strings.ToUpper(k)], fmt.Sprint(v)), "JSON field %s", k)
		case nil:
			assert.Check(t, is.Equal(env["RUNNER_BOOTSTRAP_"+strings.ToUpper(k)], ""), "JSON field %s", k)
		}
	}
}

func TestCreateDebugLogsHoldNoToken(t *testing.T) {
	tg := newTarget(t)
	tg.deleteAfter(t, "--project-id", deployProject())
	r := tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", deployProject(), "--log-level", "trace", "--log-format", "json")
	r.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(r.Stderr(), `"msg":"gitlab request"`))
	assert.Check(t, strings.Count(r.Stderr(), "\n") > 5)
}

func TestVersion(t *testing.T) {
	tg := newTarget(t)
	tg.run(t, "", nil, "--version").Assert(t, icmd.Expected{Out: "e2e"})
}
