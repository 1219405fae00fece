package lifecycle_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
)

// requestJob is what a gitlab-runner manager does in its poll loop: POST /jobs/request with
// its token and system id. It returns the HTTP status (204 no job, 403 revoked token).
func requestJob(t *testing.T, url, tok, systemID string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"token": tok, "system_id": systemID, "info": map[string]any{"version": "17.9.3"}})
	resp, err := http.Post(url+"/api/v4/jobs/request", "application/json", bytes.NewReader(body))
	assert.NilError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// clock is a settable time shared by the fake and the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (e *env) withClock(t *testing.T) *clock {
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	e.fake.SetClock(c.now)
	e.svc.Now = c.now
	return c
}

func TestRotateListsManagersSharingTheToken(t *testing.T) {
	e := setup(t, maintainer)
	c := e.withClock(t)
	r, res := e.created(t)
	tok := e.deployVar(t).Value
	// A manager last seen two days ago does not use the token any more.
	e.fake.ContactRunner(res.RunnerID, "s_gone00000001")
	c.add(48 * time.Hour)
	for _, host := range hosts {
		assert.Equal(t, requestJob(t, e.seed.URL, tok, host), http.StatusNoContent)
	}

	rot, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(rot.Action, lifecycle.ActionRotated))
	assert.Check(t, is.Len(rot.Managers, 3))
	assert.Check(t, is.Contains(rot.Notes[0], "3 managers used the token of runner"))
	assert.Check(t, !contains(rot.Notes[0], "s_gone00000001"))
	assert.Check(t, is.Contains(rot.Notes[0], "s_host0000002 (version 17.9.3, last contact "))
}

func TestRotateIgnoresManagersNotSeenForADay(t *testing.T) {
	e := setup(t, maintainer)
	c := e.withClock(t)
	r, res := e.created(t)
	e.fake.ContactRunner(res.RunnerID, "s_old00000001")
	c.add(25 * time.Hour)
	e.fake.ContactRunner(res.RunnerID, "s_new00000001")

	rot, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{RequireSingleManager: true})
	assert.NilError(t, err)
	assert.Check(t, is.Len(rot.Managers, 0))
	assert.Check(t, is.Len(rot.Notes, 0))
}

func TestRequireSingleManagerRefusesBeforeAnyWrite(t *testing.T) {
	e := setup(t, maintainer)
	r, res := e.created(t)
	e.fake.ContactRunner(res.RunnerID, "s_host0000001")
	e.fake.ContactRunner(res.RunnerID, "s_host0000002")
	before := e.fake.State()

	_, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{RequireSingleManager: true})
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeConflict))
	assert.Check(t, is.ErrorContains(err, "2 managers used the token"))
	assert.Check(t, is.ErrorContains(err, "--require-single-manager refuses to rotate a shared token (nothing was rotated)"))
	assert.DeepEqual(t, e.fake.State(), before)
}

func TestRequireSingleManagerOnGitLabWithoutManagersRoute(t *testing.T) {
	e := setup(t, maintainer)
	r, _ := e.created(t)
	c, ok := e.svc.API.(*gitlab.Client)
	assert.Assert(t, ok)
	c.SetServer(gitlab.Server{Version: gitlab.V(16, 11, 0)})
	before := e.fake.State()

	_, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{RequireSingleManager: true})
	assert.Check(t, is.ErrorContains(err, "unknown on this version: GitLab 16.11.0 has no GET /runners/:id/managers (GitLab 17.1 and later)"))
	assert.DeepEqual(t, e.fake.State(), before)

	rot, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Contains(rot.Notes[0], "unknown on this version"))
}

// rotateShared creates the runner, has three hosts poll with its token, advances the clock and
// rotates: the starting point of every wait.
func rotateShared(t *testing.T, e *env, c *clock) (lifecycle.Resolved, string) {
	t.Helper()
	r, _ := e.created(t)
	old := e.deployVar(t).Value
	for _, host := range hosts {
		assert.Equal(t, requestJob(t, e.seed.URL, old, host), http.StatusNoContent)
	}
	c.add(time.Minute)
	_, err := e.svc.Rotate(e.ctx, r, lifecycle.RotateOptions{})
	assert.NilError(t, err)
	c.add(time.Second)
	for _, host := range hosts {
		assert.Equal(t, requestJob(t, e.seed.URL, old, host), http.StatusForbidden, "the old token still works")
	}
	return r, e.deployVar(t).Value
}

var hosts = []string{"s_host0000001", "s_host0000002", "s_host0000003"}

func TestWaitManagersAllComeBack(t *testing.T) {
	e := setup(t, maintainer)
	c := e.withClock(t)
	r, fresh := rotateShared(t, e, c)
	rep, err := e.svc.Status(e.ctx, r, 0)
	assert.NilError(t, err)

	polls := 0
	// Each pause is one host redeployed from the variable polling with the new token.
	e.svc.Pause = func(d time.Duration) {
		if polls < len(hosts) {
			assert.Equal(t, requestJob(t, e.seed.URL, fresh, hosts[polls]), http.StatusNoContent)
		}
		polls++
		c.add(d)
	}
	var back []string
	w, err := e.svc.WaitManagers(e.ctx, rep, lifecycle.WaitOptions{Within: 10 * time.Minute, Every: 10 * time.Second, Progress: func(m gitlab.Manager) { back = append(back, m.SystemID) }})
	assert.NilError(t, err)
	assert.Check(t, is.Len(w.Missing, 0))
	assert.Check(t, is.Len(w.Back, 3))
	assert.Check(t, is.DeepEqual(back, hosts))
	assert.Check(t, is.Equal(polls, 3), "it stops polling once every manager is back")
}

func TestWaitManagersNamesThoseThatDoNotComeBack(t *testing.T) {
	e := setup(t, maintainer)
	c := e.withClock(t)
	r, fresh := rotateShared(t, e, c)
	rep, err := e.svc.Status(e.ctx, r, 0)
	assert.NilError(t, err)
	// A host deployed after the rotation is new: it is not waited for.
	assert.Equal(t, requestJob(t, e.seed.URL, fresh, "s_newhost00001"), http.StatusNoContent)
	assert.Equal(t, requestJob(t, e.seed.URL, fresh, hosts[0]), http.StatusNoContent)

	polls := 0
	e.svc.Pause = func(d time.Duration) { polls++; c.add(d) }
	w, err := e.svc.WaitManagers(e.ctx, rep, lifecycle.WaitOptions{Within: time.Minute, Every: 15 * time.Second})
	assert.NilError(t, err)
	assert.Check(t, is.Len(w.Back, 1))
	var missing []string
	for _, m := range w.Missing {
		missing = append(missing, m.SystemID)
	}
	assert.Check(t, is.DeepEqual(missing, hosts[1:]))
	assert.Check(t, is.Equal(polls, 4), "it polls until the duration ends")
}
