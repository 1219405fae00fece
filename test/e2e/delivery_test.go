package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// verify does what `gitlab-runner register --token` and every heartbeat do with a token:
// POST /runners/verify with the manager's system id. It returns the HTTP status.
func verify(t *testing.T, base, tok, systemID string) int {
	t.Helper()
	resp, err := http.PostForm(base+"/api/v4/runners/verify", url.Values{"token": {tok}, "system_id": {systemID}})
	assert.NilError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestScheduledRotationReachesEveryManager is the delivery pattern of the README's "Scheduled
// rotation": several managers (hosts or pods) run with the token from the variable; a
// scheduled pipeline rotates it; the deploy job hands the variable's new value to every
// manager. All managers keep working, which is what GitLab's known issue says breaks when a
// runner rotates its own token.
func TestScheduledRotationReachesEveryManager(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	created := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42"))
	managers := []string{"s_0000000000a1", "s_0000000000b2", "r_pod0000000c3"}

	// Deploy: every manager registers with the token from the variable.
	deployed := mustVar(t, tg).Value
	for _, m := range managers {
		assert.Check(t, is.Equal(verify(t, tg.url, deployed, m), http.StatusOK))
	}

	// Scheduled pipeline, job 1: rotate. The old token is dead at once.
	tg.run(t, tok, []string{"CI_PIPELINE_SOURCE=schedule"}, "rotate", "--project-id", "42").Assert(t, icmd.Success)
	for _, m := range managers {
		assert.Check(t, is.Equal(verify(t, tg.url, deployed, m), http.StatusForbidden), "the old token must stop working")
	}
	// Job 2: deploy from the variable; every manager gets the new token and works again.
	fresh := mustVar(t, tg).Value
	for _, m := range managers {
		assert.Check(t, is.Equal(verify(t, tg.url, fresh, m), http.StatusOK))
	}
	st := tg.run(t, tok, nil, "status", "--project-id", "42")
	st.Assert(t, icmd.Success)
	assert.Check(t, is.Equal(strings.Count(st.Stdout(), " online, last contact"), len(managers)), st.Stdout())
	tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", created.RunnerID)
}

// TestSelfRotationIsRepairedBySchedule: a manager rotated the token itself (gitlab-runner at 75%
// of the token's life) and kept the new one in its config.toml; the other managers and the
// variable are stale. status reports it and the next scheduled rotate repairs the variable,
// after which a deploy brings every manager back.
func TestSelfRotationIsRepairedBySchedule(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	tg.fake.SetRunnerTokenExpiration(100 * time.Hour)
	created := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42"))
	stale := mustVar(t, tg).Value
	tg.fake.AdvanceClock(75 * time.Hour) // gitlab-runner rotates at 75% of the token's life
	tg.fake.RotateRunnerTokenAsRunner(created.RunnerID)
	assert.Check(t, is.Equal(verify(t, tg.url, stale, "s_0000000000b2"), http.StatusForbidden), "the other managers are broken")

	tg.run(t, tok, nil, "status", "--project-id", "42").Assert(t, icmd.Expected{ExitCode: 10, Err: "rotated outside runner-bootstrap"})
	tg.run(t, tok, nil, "rotate", "--project-id", "42", "--if-expiring-within", "1h").Assert(t, icmd.Expected{Out: "rotated outside runner-bootstrap"})
	assert.Check(t, is.Equal(verify(t, tg.url, mustVar(t, tg).Value, "s_0000000000b2"), http.StatusOK))
	tg.run(t, tok, nil, "status", "--project-id", "42").Assert(t, icmd.Success)
}
