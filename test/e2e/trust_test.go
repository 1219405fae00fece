package e2e

import (
	"encoding/json"
	"fmt"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

const notCreatedFor = "does not name a runner created for it"

// plant writes, with the attacker's access token (any Maintainer of the project), a variable
// whose description looks like the tool's record of runner id.
func (tg *target) plant(t *testing.T, tok string, projectID int64, key string, id int64) {
	t.Helper()
	c, err := gitlab.New(gitlab.Config{BaseURL: tg.url, Token: tok, NoRetries: true})
	assert.NilError(t, err)
	val := token.Secret("attacker-reads-this-value")
	desc := fmt.Sprintf("managed by runner-bootstrap; runner_id=%d; token_expires_at=never; token_set_at=2026-11-25T08:52:36Z", id)
	assert.NilError(t, c.CreateVariable(t.Context(), gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: projectID, Key: key, Scope: "*"},
		gitlab.VariableWrite{Value: &val, Description: &desc, Hidden: true}))
}

// TestForgedDescriptionNeverMovesAnotherRunner: a Maintainer of platform/deploy plants
// variables whose descriptions name an instance runner and another project's runner. An
// administrator's rotate --all, rotate, create (the replace path), delete, status and apply
// all refuse them: no write at all on GitLab, a non-zero exit and the sentence saying that
// the variable does not name a runner created for it; rotate --all goes on with the rest.
func TestForgedDescriptionNeverMovesAnotherRunner(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	admin := tg.seed.AdminToken
	inst := decode(t, tg.run(t, admin, nil, "create", "-o", "json", "--runner-type", "instance_type", "--variable-instance", "--variable-key", "INSTANCE_RUNNER_TOKEN"))
	other := decode(t, tg.run(t, admin, nil, "create", "-o", "json", "--project-id", "other/app", "--variable-key", "APP_TOKEN"))
	own := decode(t, tg.run(t, admin, nil, "create", "-o", "json", "--project-id", "platform/deploy", "--variable-key", "DEPLOY_TOKEN"))
	tg.plant(t, tg.seed.MaintainerToken, 42, "STEAL_INSTANCE", inst.RunnerID)
	tg.plant(t, tg.seed.MaintainerToken, 42, "STEAL_APP", other.RunnerID)
	tokens := func() map[int64]string {
		out := map[int64]string{}
		for _, r := range tg.fake.Runners() {
			out[r.ID] = r.Token
		}
		return out
	}
	before := tokens()
	writes := tg.writes()

	res := tg.run(t, admin, nil, "rotate", "--all", "--project-id", "platform/deploy", "-o", "json")
	res.Assert(t, icmd.Expected{ExitCode: 1})
	var bulk bulkOut
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &bulk))
	assert.Check(t, is.Equal(bulk.Rotated, 1), "the tool's own variable is still rotated")
	assert.Check(t, is.Equal(bulk.Failed, 2))
	for _, v := range bulk.Variables {
		if v.Action == "failed" {
			assert.Check(t, is.Contains(v.Error, notCreatedFor))
		}
	}
	after := tokens()
	assert.Check(t, is.Equal(after[inst.RunnerID], before[inst.RunnerID]), "the instance runner was reset")
	assert.Check(t, is.Equal(after[other.RunnerID], before[other.RunnerID]), "another project's runner was reset")
	assert.Check(t, after[own.RunnerID] != before[own.RunnerID])
	tg.storedOK(t, "project", 42, "DEPLOY_TOKEN", "*", own.RunnerID)
	for _, key := range []string{"STEAL_INSTANCE", "STEAL_APP"} {
		v, _ := tg.fake.Variable("project", 42, key, "*")
		assert.Check(t, is.Equal(v.Value, "attacker-reads-this-value"), "%s was written", key)
	}
	writes = tg.writes() - writes
	assert.Check(t, is.Equal(writes, 5), "only the tool's own variable was rotated (mark, reset, store, verify, remove the check's manager)")

	writes = tg.writes()
	for _, args := range [][]string{
		{"rotate", "--project-id", "platform/deploy", "--variable-key", "STEAL_INSTANCE"},
		{"create", "--project-id", "platform/deploy", "--variable-key", "STEAL_APP"},
		{"create", "--project-id", "platform/deploy", "--variable-key", "STEAL_INSTANCE"},
		{"delete", "--project-id", "platform/deploy", "--variable-key", "STEAL_APP"},
		{"delete", "--project-id", "platform/deploy", "--variable-key", "STEAL_INSTANCE"},
	} {
		r := tg.run(t, admin, nil, args...)
		r.Assert(t, icmd.Expected{ExitCode: 5, Err: notCreatedFor})
	}
	st := tg.run(t, admin, nil, "status", "--project-id", "platform/deploy", "--variable-key", "STEAL_APP", "-o", "json")
	st.Assert(t, icmd.Expected{ExitCode: 12})
	var rep statusReport
	assert.NilError(t, json.Unmarshal([]byte(st.Stdout()), &rep))
	assert.Check(t, is.Equal(rep.Health, "not_created_for_variable"))

	fleet := writeFleet(t, `runners:
  - runner_type: project_type
    project_id: platform/deploy
    variable:
      key: STEAL_APP
`)
	ap := tg.run(t, admin, nil, "apply", "--file", fleet, "-o", "json")
	assert.Check(t, ap.ExitCode != 0)
	assert.Check(t, is.Contains(ap.Stdout(), notCreatedFor))
	assert.Check(t, is.Equal(tg.writes(), writes), "a refused command wrote to GitLab")
	assert.Check(t, is.DeepEqual(tokens(), after))
}
