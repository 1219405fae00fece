package gitlabfake

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func createOpts(seed Seed) *gitlab.CreateUserRunnerOptions {
	return &gitlab.CreateUserRunnerOptions{RunnerType: new("project_type"), ProjectID: new(seed.DeployProjectID)}
}

func TestFaultStatusTimesAndSkip(t *testing.T) {
	s, seed := NewTest(t)
	s.AddFault(Fault{Method: "POST", Path: "/user/runners", Status: 500, Times: 2, Skip: 1})
	c := client(t, s, seed.MaintainerToken)

	_, _, err := c.Users.CreateUserRunner(createOpts(seed)) // skipped
	assert.NilError(t, err)
	for range 2 {
		_, resp, err := c.Users.CreateUserRunner(createOpts(seed))
		assert.Check(t, gitlab.HasStatusCode(err, http.StatusInternalServerError))
		assert.Equal(t, resp.StatusCode, 500)
	}
	_, _, err = c.Users.CreateUserRunner(createOpts(seed)) // the fault is used up
	assert.NilError(t, err)
	assert.Equal(t, len(s.Runners()), 2)
	assert.Equal(t, len(s.Faults()), 0)
	assert.Equal(t, s.Writes(), 2)

	s.AddFault(Fault{Path: "/user/runners", Status: 500})
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/user/runners", seed.MaintainerToken, nil), 500, `{"message":"500 Internal Server Error"}`)
	s.ClearFaults()
}

func TestFaultDefaultBodies(t *testing.T) {
	s, seed := NewTest(t)
	s.AddFault(Fault{Path: "/runners", Status: 502, Times: 1})
	resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil)
	assert.Equal(t, resp.Status, 502)
	assert.Check(t, is.Contains(resp.Body, "<h1>502 Bad Gateway</h1>"))
	assert.Equal(t, resp.Header.Get("Content-Type"), "text/html; charset=utf-8")

	s.AddFault(Fault{Path: "/runners", Status: 429, RetryAfter: 7, Times: 1})
	resp = rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil)
	assertResponse(t, resp, 429, "Retry later\n")
	assert.Equal(t, resp.Header.Get("Retry-After"), "7")
	assert.Equal(t, s.Count429(), 1)

	s.AddFault(Fault{Path: "/runners", Status: 409, Body: `{"message":"custom"}`, Times: 1})
	resp = rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil)
	assertResponse(t, resp, 409, `{"message":"custom"}`)
	assert.Equal(t, resp.Header.Get("Content-Type"), "application/json")

	// RetryAfter without Status decorates the real response.
	s.AddFault(Fault{Path: "/runners", RetryAfter: 3, Times: 1})
	resp = rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil)
	assertResponse(t, resp, 200, "[]")
	assert.Equal(t, resp.Header.Get("Retry-After"), "3")
}

func TestFaultDrop(t *testing.T) {
	s, seed := NewTest(t)
	s.AddFault(Fault{Method: "POST", Path: "/user/runners", Drop: true, Times: 1})
	c := client(t, s, seed.MaintainerToken)

	_, resp, err := c.Users.CreateUserRunner(createOpts(seed))
	assert.Check(t, err != nil)
	assert.Check(t, resp == nil)
	assert.Equal(t, len(s.Runners()), 0, "Drop acts before the handler")
	assert.Equal(t, s.Writes(), 0)
	reqs := s.Requests()
	assert.Equal(t, len(reqs), 1)
	assert.Equal(t, reqs[0].Status, 0)

	_, _, err = c.Users.CreateUserRunner(createOpts(seed))
	assert.NilError(t, err)
}

func TestFaultDropAfterAct(t *testing.T) {
	s, seed := NewTest(t)
	s.AddFault(Fault{Method: "POST", Path: "/user/runners", DropAfterAct: true, Times: 1})
	c := client(t, s, seed.MaintainerToken)

	_, _, err := c.Users.CreateUserRunner(createOpts(seed))
	assert.Check(t, err != nil)
	assert.Equal(t, len(s.Runners()), 1, "the server acted although the client saw an error")
	assert.Equal(t, s.Writes(), 1)
}

func TestFaultStallHonoursCancellation(t *testing.T) {
	s, seed := NewTest(t)
	s.AddFault(Fault{Method: "POST", Path: "/user/runners", Stall: 10 * time.Second})
	c := client(t, s, seed.MaintainerToken)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := c.Users.CreateUserRunner(createOpts(seed), gitlab.WithContext(ctx))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Check(t, time.Since(start) < 2*time.Second)

	// The handler never runs for a request whose client gave up.
	assert.Assert(t, waitFor(func() bool { return len(s.Requests()) == 1 }))
	assert.Equal(t, len(s.Runners()), 0)

	s.ClearFaults()
	s.AddFault(Fault{Path: "/runners", Stall: 30 * time.Millisecond, Times: 1})
	start = time.Now()
	assert.Equal(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil).Status, 200)
	assert.Check(t, time.Since(start) >= 30*time.Millisecond)
}

func TestLatency(t *testing.T) {
	s, seed := NewTest(t)
	s.SetLatency(30 * time.Millisecond)
	start := time.Now()
	assert.Equal(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil).Status, 200)
	assert.Check(t, time.Since(start) >= 30*time.Millisecond)
}

func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func TestFaultPathPatterns(t *testing.T) {
	for _, tc := range []struct {
		fault  Fault
		method string
		segs   []string
		want   bool
	}{
		{Fault{}, "GET", []string{"runners"}, true},
		{Fault{Path: "/user/runners"}, "POST", []string{"user", "runners"}, true},
		{Fault{Path: "/api/v4/user/runners"}, "POST", []string{"user", "runners"}, true},
		{Fault{Method: "get", Path: "/user/runners"}, "POST", []string{"user", "runners"}, false},
		{Fault{Path: "/projects/*/variables/*"}, "PUT", []string{"projects", "platform/deploy", "variables", "K"}, true},
		{Fault{Path: "/projects/platform%2Fdeploy/variables/*"}, "PUT", []string{"projects", "platform/deploy", "variables", "K"}, true},
		{Fault{Path: "/projects/*/variables/*"}, "GET", []string{"projects", "42", "variables"}, false},
		{Fault{Path: "/runners/*/reset_authentication_token"}, "POST", []string{"runners", "1000", "reset_authentication_token"}, true},
		{Fault{Path: "/runners/**"}, "GET", []string{"runners"}, true},
		{Fault{Path: "/runners/**"}, "GET", []string{"runners", "1", "managers"}, true},
		{Fault{Path: "/runners/**"}, "GET", []string{"projects", "1"}, false},
	} {
		assert.Check(t, tc.fault.matches(tc.method, tc.segs) == tc.want, "%+v %s %v", tc.fault, tc.method, tc.segs)
	}
}

func TestRateLimit(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	s.SetRateLimit(3)
	reset := strconv.FormatInt(time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC).Unix(), 10)

	for i := 1; i <= 3; i++ {
		resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil)
		assert.Equal(t, resp.Status, 200)
		assert.Equal(t, resp.Header.Get("RateLimit-Name"), "throttle_authenticated_api")
		assert.Equal(t, resp.Header.Get("RateLimit-Limit"), "3")
		assert.Equal(t, resp.Header.Get("RateLimit-Observed"), strconv.Itoa(i))
		assert.Equal(t, resp.Header.Get("RateLimit-Remaining"), strconv.Itoa(3-i))
		assert.Equal(t, resp.Header.Get("RateLimit-Reset"), reset)
	}
	// All tokens of a user share the budget, as GitLab keys the throttle by user.
	resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.ReadAPIToken, nil)
	assertResponse(t, resp, 429, "Retry later\n")
	assert.Equal(t, resp.Header.Get("Content-Type"), "text/plain")
	assert.Equal(t, resp.Header.Get("Retry-After"), "30")
	assert.Equal(t, resp.Header.Get("RateLimit-ResetTime"), "Sun, 01 Mar 2026 12:01:00 GMT")
	assert.Equal(t, resp.Header.Get("RateLimit-Remaining"), "0")
	assert.Equal(t, s.Count429(), 1)

	// Another user has its own budget; runner-token requests are not counted.
	assert.Equal(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.MaintainerToken, nil).Status, 200)
	verify := rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": "glrt-x"})
	assert.Equal(t, verify.Header.Get("RateLimit-Limit"), "")

	_, _, err := client(t, s, seed.OwnerToken).Runners.ListRunners(nil)
	assert.Check(t, gitlab.HasStatusCode(err, http.StatusTooManyRequests))

	s.AdvanceClock(30 * time.Second) // next window
	assert.Equal(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil).Status, 200)

	s.SetRateLimit(0)
	resp = rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil)
	assert.Equal(t, resp.Header.Get("RateLimit-Limit"), "")
	assert.Equal(t, resp.Header.Get("RateLimit-Reset"), "")
}

// TestThrottleIsGitLabs: a period other than a minute, headers only on the 429 unless
// HeadersOnEveryAnswer, the limit normalised to 60 s and the window aligned to the epoch.
func TestThrottleIsGitLabs(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC) // 1 s into a 3-second window
	s.SetClock(func() time.Time { return now })
	s.SetThrottle(Throttle{Requests: 2, Period: 3 * time.Second})
	for range 2 {
		resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil)
		assert.Equal(t, resp.Status, 200)
		assert.Equal(t, resp.Header.Get("RateLimit-Remaining"), "", "no headers on unthrottled answers without the feature flag")
		assert.Equal(t, resp.Header.Get("Date"), "Sun, 01 Mar 2026 12:00:07 GMT")
	}
	resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil)
	assertResponse(t, resp, 429, "Retry later\n")
	assert.Equal(t, resp.Header.Get("RateLimit-Limit"), "40") // 2 per 3 s, per 60 s
	assert.Equal(t, resp.Header.Get("RateLimit-Observed"), "3")
	assert.Equal(t, resp.Header.Get("RateLimit-Remaining"), "0")
	assert.Equal(t, resp.Header.Get("Retry-After"), "2")
	assert.Equal(t, resp.Header.Get("RateLimit-Reset"), strconv.FormatInt(time.Date(2026, 3, 1, 12, 0, 9, 0, time.UTC).Unix(), 10))
	// Throttled requests count too: the window stays spent.
	assert.Equal(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil).Header.Get("RateLimit-Observed"), "4")

	s.AdvanceClock(2 * time.Second)
	s.SetThrottle(Throttle{Requests: 2, Period: 3 * time.Second, HeadersOnEveryAnswer: true})
	resp = rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil)
	assert.Equal(t, resp.Status, 200)
	assert.Equal(t, resp.Header.Get("RateLimit-Remaining"), "1")
	assert.Equal(t, resp.Header.Get("Retry-After"), "")
	assert.Equal(t, resp.Header.Get("RateLimit-ResetTime"), "")
}
