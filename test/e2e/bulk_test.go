package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

type bulkOut struct {
	Rotated, Skipped, Failed int
	Variables                []struct {
		Variable string `json:"variable"`
		Action   string `json:"action"`
		RunnerID int64  `json:"runner_id"`
		Error    string `json:"error"`
	} `json:"variables"`
}

// TestRotateAllWithOneFailure: every managed variable of a group and its subgroups and projects
// is rotated concurrently; an injected failure on one does not stop the others, and the exit
// code reports it.
func TestRotateAllWithOneFailure(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.OwnerToken
	ids := map[string]int64{}
	for _, args := range [][]string{
		{"--runner-type", "group_type", "--group-id", "platform", "--variable-key", "A"},
		{"--runner-type", "group_type", "--group-id", "platform/runners", "--variable-key", "B"},
		{"--project-id", "platform/deploy", "--variable-key", "C"},
		{"--project-id", "platform/runners/fleet", "--variable-key", "D"},
	} {
		r := decode(t, tg.run(t, tok, nil, append([]string{"create", "-o", "json"}, args...)...))
		ids[r.VariableKey] = r.RunnerID
	}
	// A variable the tool does not manage is left alone.
	c, err := gitlab.New(gitlab.Config{BaseURL: tg.url, Token: tok, NoRetries: true})
	assert.NilError(t, err)
	val := token.Secret("not-a-runner-token")
	assert.NilError(t, c.CreateVariable(t.Context(), gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: 42, Key: "E", Scope: "*"}, gitlab.VariableWrite{Value: &val}))
	tg.fake.AddFault(gitlabfake.Fault{Method: "POST", Path: "/runners/" + itoa(ids["C"]) + "/reset_authentication_token", Status: 500})
	before := map[string]string{}
	for _, v := range tg.fake.Variables() {
		before[v.Key] = v.Value
	}

	res := tg.run(t, tok, nil, "rotate", "--all", "--group-id", "platform", "--include-subgroups", "-o", "json")
	res.Assert(t, icmd.Expected{ExitCode: 1, Err: "1 of 4 rotations failed"})
	var out bulkOut
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &out))
	assert.Check(t, is.Equal(out.Rotated, 3))
	assert.Check(t, is.Equal(out.Failed, 1))
	for _, v := range tg.fake.Variables() {
		if v.Key == "C" || v.Key == "E" {
			assert.Check(t, is.Equal(v.Value, before[v.Key]), "%s: a failed or unmanaged variable keeps its value", v.Key)
			continue
		}
		assert.Check(t, v.Value != before[v.Key], "%s was not rotated", v.Key)
		tg.storedOK(t, v.Owner, v.OwnerID, v.Key, v.EnvironmentScope, ids[v.Key])
	}
	text := tg.run(t, tok, nil, "rotate", "--all", "--project-id", "platform/deploy")
	text.Assert(t, icmd.Expected{ExitCode: 1, Out: "VARIABLE"})
	assert.Check(t, is.Contains(text.Stdout(), "0 rotated, 0 skipped, 1 failed"))
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestRotateAllSkipsAnUnreadableSubproject: a project in a subgroup whose variables the user
// cannot list is reported as failed; the rest is rotated.
func TestRotateAllSkipsAnUnreadableSubproject(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.OwnerToken
	tg.run(t, tok, nil, "create", "--runner-type", "group_type", "--group-id", "platform", "--variable-key", "A").Assert(t, icmd.Success)
	tg.fake.AddFault(gitlabfake.Fault{Method: "GET", Path: "/projects/43/variables", Status: 403, Body: `{"message":"403 Forbidden"}`})
	res := tg.run(t, tok, nil, "rotate", "--all", "--group-id", "platform", "--include-subgroups")
	res.Assert(t, icmd.Expected{ExitCode: 1, Out: "1 rotated, 0 skipped, 1 failed"})
	assert.Check(t, is.Contains(res.Stdout(), "project platform/runners/fleet (all variables)"))
}

// TestRotateAllSkipsTokensOutsideTheWindow: with --if-expiring-within, rotate --all rotates
// only the tokens that expire within the window, counts the others as skipped (their values
// untouched), and succeeds.
func TestRotateAllSkipsTokensOutsideTheWindow(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	tg.fake.SetRunnerTokenExpiration(100 * time.Hour)
	tg.run(t, tok, nil, "create", "--project-id", "platform/deploy", "--variable-key", "LATER").Assert(t, icmd.Success)
	tg.fake.SetRunnerTokenExpiration(10 * time.Hour)
	tg.run(t, tok, nil, "create", "--project-id", "platform/deploy", "--variable-key", "SOON").Assert(t, icmd.Success)
	before := map[string]string{}
	for _, v := range tg.fake.Variables() {
		before[v.Key] = v.Value
	}

	res := tg.run(t, tok, nil, "rotate", "--all", "--project-id", "platform/deploy", "--if-expiring-within", "72h", "-o", "json")
	res.Assert(t, icmd.Success)
	var out bulkOut
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &out))
	assert.Check(t, is.Equal(out.Rotated, 1))
	assert.Check(t, is.Equal(out.Skipped, 1))
	assert.Check(t, is.Equal(out.Failed, 0))
	actions := map[string]string{}
	for _, v := range out.Variables {
		actions[v.Variable] = v.Action
	}
	after := map[string]string{}
	for _, v := range tg.fake.Variables() {
		after[v.Key] = v.Value
	}
	assert.Check(t, is.Equal(after["LATER"], before["LATER"]), "a token outside the window was rotated")
	assert.Check(t, after["SOON"] != before["SOON"], "the token within the window was not rotated")
	assert.Check(t, is.DeepEqual(actions, map[string]string{
		"project platform/deploy variable LATER (scope *)": "skipped",
		"project platform/deploy variable SOON (scope *)":  "rotated",
	}))

	text := tg.run(t, tok, nil, "rotate", "--all", "--project-id", "platform/deploy", "--if-expiring-within", "1h")
	text.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(text.Stdout(), "0 rotated, 2 skipped, 0 failed"))
}
