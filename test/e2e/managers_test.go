package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// poll is one turn of a gitlab-runner manager's loop: POST /jobs/request with its token and
// system id (GitLab refreshes the manager's contacted_at). It returns the HTTP status.
func poll(t *testing.T, tg *target, tok, systemID string) int {
	t.Helper()
	code, _ := runnerCall(t, tg, "/jobs/request", map[string]any{"token": tok, "system_id": systemID, "info": map[string]any{"version": "17.9.3"}})
	return code
}

type managerJSON struct {
	SystemID string `json:"system_id"`
	Version  string `json:"version"`
}

// TestSharedTokenRotationWarnsAndWaitManagersChecksTheRedeploy: three hosts poll with one
// token. --require-single-manager refuses before any write; a plain rotate names the three
// in text and JSON; status --wait-managers fails naming the hosts not yet redeployed, and
// passes once every host polls with the variable's new value.
func TestSharedTokenRotationWarnsAndWaitManagersChecksTheRedeploy(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	tg.run(t, tok, nil, "create", "--project-id", "42").Assert(t, icmd.Success)
	old := mustVar(t, tg).Value
	for _, h := range threeHosts {
		assert.Check(t, is.Equal(poll(t, tg, old, h), http.StatusNoContent))
	}

	writes := tg.writes()
	tg.run(t, tok, nil, "rotate", "--project-id", "42", "--require-single-manager").Assert(t, icmd.Expected{ExitCode: 5, Err: "3 managers used the token of runner"})
	assert.Check(t, is.Equal(tg.writes(), writes), "--require-single-manager refused after a write")
	assert.Check(t, is.Equal(poll(t, tg, old, threeHosts[0]), http.StatusNoContent), "the token still works")

	// The record keeps whole seconds: let the hosts' last contact fall in an earlier second.
	time.Sleep(1100 * time.Millisecond)
	rot := tg.run(t, tok, nil, "rotate", "-o", "json", "--project-id", "42")
	rot.Assert(t, icmd.Success)
	var res struct {
		Managers []managerJSON `json:"managers"`
		Notes    []string      `json:"notes"`
	}
	assert.NilError(t, json.Unmarshal([]byte(rot.Stdout()), &res))
	assert.Check(t, is.Len(res.Managers, 3))
	assert.Check(t, is.Equal(res.Managers[0].Version, "17.9.3"))
	assert.Check(t, is.Contains(rot.Stderr(), "each keeps the revoked token until it is redeployed"))
	tg.assertNoSecrets(t, rot.Combined())

	// One host redeployed from the variable; the other two still hold the revoked token.
	fresh := mustVar(t, tg).Value
	assert.Check(t, is.Equal(poll(t, tg, fresh, threeHosts[0]), http.StatusNoContent))
	for _, h := range threeHosts[1:] {
		assert.Check(t, is.Equal(poll(t, tg, old, h), http.StatusForbidden))
	}
	st := tg.run(t, tok, nil, "status", "--project-id", "42", "--wait-managers", "1s")
	st.Assert(t, icmd.Expected{ExitCode: 1, Err: "2 of 3 managers have not contacted GitLab since the rotation"})
	assert.Check(t, is.Contains(st.Stderr(), threeHosts[1]))
	assert.Check(t, is.Contains(st.Stderr(), threeHosts[2]))
	assert.Check(t, !contains(st.Stderr(), threeHosts[0]+" (version"), st.Stderr())

	for _, h := range threeHosts[1:] {
		assert.Check(t, is.Equal(poll(t, tg, fresh, h), http.StatusNoContent))
	}
	ok := tg.run(t, tok, nil, "status", "--project-id", "42", "--wait-managers", "30s")
	ok.Assert(t, icmd.Expected{Out: "managers back since the rotation at"})
	assert.Check(t, is.Contains(ok.Stdout(), "3 of 3"))
}

var threeHosts = []string{"s_host00000001", "s_host00000002", "r_pod000000003"}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestPruneManagersDryRunAndReal: a host that stopped polling is removed from the runner's
// managers with the runner's token from the job's environment; --dry-run only lists it.
func TestPruneManagersDryRunAndReal(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	tg.run(t, tok, nil, "create", "--project-id", "42").Assert(t, icmd.Success)
	stored := mustVar(t, tg).Value
	assert.Check(t, is.Equal(poll(t, tg, stored, threeHosts[0]), http.StatusNoContent))
	time.Sleep(1200 * time.Millisecond)
	assert.Check(t, is.Equal(poll(t, tg, stored, threeHosts[1]), http.StatusNoContent))
	env := []string{"RUNNER_TOKEN=" + stored}

	tg.run(t, tok, nil, "prune", "--managers", "--project-id", "42").Assert(t, icmd.Expected{ExitCode: 2, Err: "reads the runner token from $RUNNER_TOKEN, which is empty here"})
	dry := tg.run(t, tok, env, "prune", "--managers", "--project-id", "42", "--older-than", "1s", "--dry-run")
	dry.Assert(t, icmd.Expected{Out: "would remove manager " + threeHosts[0]})
	assert.Check(t, !contains(dry.Stdout(), threeHosts[1]), dry.Stdout())
	assert.Check(t, is.Len(managersOf(t, tg), 2), "--dry-run removed a manager")

	done := tg.run(t, tok, env, "prune", "--managers", "--project-id", "42", "--older-than", "1s", "-o", "json")
	done.Assert(t, icmd.Success)
	tg.assertNoSecrets(t, done.Combined())
	var out struct {
		Managers []struct {
			SystemID string `json:"system_id"`
			Deleted  bool   `json:"deleted"`
		} `json:"managers"`
	}
	assert.NilError(t, json.Unmarshal([]byte(done.Stdout()), &out))
	assert.Assert(t, is.Len(out.Managers, 1))
	assert.Check(t, out.Managers[0].Deleted)
	assert.Check(t, is.DeepEqual(managersOf(t, tg), []string{threeHosts[1]}))
}

func managersOf(t *testing.T, tg *target) []string {
	t.Helper()
	rs := tg.fake.Runners()
	assert.Assert(t, is.Len(rs, 1))
	var out []string
	for _, m := range rs[0].Managers {
		out = append(out, m.SystemID)
	}
	return out
}
