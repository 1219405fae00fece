package gitlab

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// start is the beginning of a fixed 60-second window on the test clock.
var start = time.Unix(1_800_000_000-1_800_000_000%60, 0)

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time          { return c.t }
func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// answer is an answer as GitLab's throttle sends it: the user's budget left after this request
// and the window's end; no header at all when limit is 0.
func answer(status, limit, remaining int, reset time.Time, extra ...string) *http.Response {
	h := http.Header{}
	if limit > 0 {
		h.Set("RateLimit-Limit", strconv.Itoa(limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return &http.Response{StatusCode: status, Header: h}
}

// admitAll takes tickets at the current time until the gate refuses one.
func admitAll(b *budget, now time.Time) []ticket {
	var got []ticket
	for len(got) < 10_000 {
		t, _, ok := b.try(now)
		if !ok {
			break
		}
		got = append(got, t)
	}
	return got
}

func newTestBudget(perMinute int, clk *testClock) *budget {
	b := newBudget(perMinute, clk.now)
	b.share(1, 8)
	return b
}

func TestBudgetSpendsTheAnnouncedBudgetDownToTheReserve(t *testing.T) {
	clk := &testClock{t: start.Add(10 * time.Second)}
	b := newTestBudget(0, clk)
	reset := start.Add(time.Minute)

	// Nothing announced yet and no budget of its own: requests go.
	first := admitAll(b, clk.now())
	assert.Assert(t, len(first) == 10_000, "an unannounced budget must not hold requests back")
	for _, tk := range first {
		b.done(tk, answer(200, 600, 500, reset))
	}
	// reserve = 1 process × 8 in flight + max(2, 600/50) = 20: 500 − 20 may be in flight.
	got := admitAll(b, clk.now())
	assert.Check(t, is.Len(got, 480))
	_, wait, ok := b.try(clk.now())
	assert.Check(t, !ok)
	assert.Check(t, is.Equal(wait, 50*time.Second), "waits for the window's end")

	// Each answer lowers Remaining by one and frees its slot: no new room.
	for i, tk := range got[:100] {
		b.done(tk, answer(200, 600, 499-i, reset))
	}
	assert.Check(t, is.Len(admitAll(b, clk.now()), 0))

	// The answers run out of budget: the rest wait for the window's end...
	for _, tk := range got[100:] {
		b.done(tk, answer(200, 600, 20, reset))
	}
	assert.Check(t, is.Len(admitAll(b, clk.now()), 0))
	clk.advance(49 * time.Second)
	assert.Check(t, is.Len(admitAll(b, clk.now()), 0))

	// ...then exactly one probe goes, and its answer opens the new window.
	clk.advance(time.Second)
	probe := admitAll(b, clk.now())
	assert.Assert(t, is.Len(probe, 1))
	assert.Check(t, probe[0].probe)
	b.done(probe[0], answer(200, 600, 599, reset.Add(time.Minute)))
	assert.Check(t, is.Len(admitAll(b, clk.now()), 599-20))
}

func TestBudgetKeepsTheSmallestRemainingOfAWindow(t *testing.T) {
	clk := &testClock{t: start}
	b := newTestBudget(0, clk)
	reset := start.Add(time.Minute)
	tks := admitAll(b, clk.now())[:4]
	b.inflight = 4

	b.done(tks[0], answer(200, 1000, 100, reset))
	b.done(tks[1], answer(200, 1000, 300, reset)) // sent earlier, answered later
	assert.Check(t, is.Equal(b.remaining, 100))
	b.done(tks[2], answer(200, 1000, 900, reset.Add(-time.Minute))) // the window before
	assert.Check(t, is.Equal(b.remaining, 100))
	b.done(tks[3], answer(200, 1000, 990, reset.Add(time.Minute))) // the next window
	assert.Check(t, is.Equal(b.remaining, 990))
	assert.Check(t, is.Equal(b.inflight, 0))
}

func TestBudgetReserveCoversTheOtherShards(t *testing.T) {
	clk := &testClock{t: start}
	b := newTestBudget(0, clk)
	b.share(4, 8)
	tk, _, _ := b.try(clk.now())
	b.done(tk, answer(200, 2000, 100, start.Add(time.Minute)))
	// 4 processes × 8 in flight + 2000/50 = 72 left for the others.
	assert.Check(t, is.Len(admitAll(b, clk.now()), 100-72))
}

func TestBudgetReadsTheWindowsEndFromTheServersClock(t *testing.T) {
	clk := &testClock{t: start}
	b := newTestBudget(0, clk)
	// The server's clock is 100 s behind ours: its window ends 30 s from now, not at reset.
	serverNow := start.Add(-100 * time.Second)
	reset := serverNow.Add(30 * time.Second)
	tk, _, _ := b.try(clk.now())
	b.done(tk, answer(200, 600, 0, reset, "Date", serverNow.UTC().Format(http.TimeFormat)))
	_, wait, ok := b.try(clk.now())
	assert.Check(t, !ok)
	assert.Check(t, is.Equal(wait, 30*time.Second))
}

func TestBudgetReprobesAStaleViewWhenLittleIsLeft(t *testing.T) {
	clk := &testClock{t: start}
	b := newTestBudget(0, clk)
	tk, _, _ := b.try(clk.now())
	b.done(tk, answer(200, 1000, 100, start.Add(time.Minute)))
	clk.advance(2 * time.Second) // other shards kept spending meanwhile
	got := admitAll(b, clk.now())
	assert.Assert(t, is.Len(got, 1))
	assert.Check(t, got[0].probe)
	b.done(got[0], answer(200, 1000, 60, start.Add(time.Minute)))
	assert.Check(t, is.Len(admitAll(b, clk.now()), 60-28))
}

func TestBudgetPacesWithoutHeaders(t *testing.T) {
	clk := &testClock{t: start}
	b := newTestBudget(120, clk) // 2 a second
	tk, _, ok := b.try(clk.now())
	assert.Assert(t, ok)
	b.done(tk, answer(200, 0, 0, time.Time{}))
	_, wait, ok := b.try(clk.now())
	assert.Check(t, !ok)
	assert.Check(t, is.Equal(wait, 500*time.Millisecond))

	// Over the rest of the minute: 119 more, evenly spaced, never a burst.
	n := 0
	for range 60_000 {
		if tk, _, ok := b.try(clk.now()); ok {
			n++
			b.done(tk, answer(200, 0, 0, time.Time{}))
		}
		clk.advance(time.Millisecond)
	}
	assert.Check(t, is.Equal(n, 119))

	// Four shards share the budget: each paces to a quarter.
	b.share(4, 8)
	clk.advance(time.Minute)
	tk, _, _ = b.try(clk.now())
	b.done(tk, answer(200, 0, 0, time.Time{}))
	_, wait, _ = b.try(clk.now())
	assert.Check(t, is.Equal(wait, 2*time.Second))
}

func TestBudget429StopsEveryRequestUntilRetryAfterThenSlowsDown(t *testing.T) {
	clk := &testClock{t: start}
	b := newTestBudget(600, clk) // 10 a second
	tk, _, _ := b.try(clk.now())
	b.done(tk, answer(http.StatusTooManyRequests, 0, 0, time.Time{}, "Retry-After", "7"))
	clk.advance(6 * time.Second)
	_, wait, ok := b.try(clk.now())
	assert.Check(t, !ok)
	assert.Check(t, is.Equal(wait, time.Second))
	clk.advance(time.Second)
	tk, _, ok = b.try(clk.now())
	assert.Assert(t, ok)
	b.done(tk, answer(200, 0, 0, time.Time{}))
	_, wait, _ = b.try(clk.now())
	assert.Check(t, is.Equal(wait, 200*time.Millisecond), "half the pace: 5 a second")
}

func TestBudget429WithHeadersWaitsProbesAndWidensTheReserve(t *testing.T) {
	clk := &testClock{t: start.Add(30 * time.Second)}
	b := newTestBudget(0, clk)
	reset := start.Add(time.Minute)
	tks := admitAll(b, clk.now())[:2]
	b.inflight = 2
	b.done(tks[0], answer(http.StatusTooManyRequests, 600, 0, reset, "Retry-After", "30"))
	b.done(tks[1], answer(200, 600, 40, reset)) // counted before the other shard spent the rest
	assert.Check(t, is.Len(admitAll(b, clk.now()), 0))
	clk.advance(30 * time.Second)
	probe := admitAll(b, clk.now())
	assert.Assert(t, is.Len(probe, 1))
	b.done(probe[0], answer(200, 600, 599, reset.Add(time.Minute)))
	// reserve 20, plus 8 after one 429.
	assert.Check(t, is.Len(admitAll(b, clk.now()), 599-28))
}

func TestBudgetPacesWhenTheServerAnnouncesOnlyOnThrottledAnswers(t *testing.T) {
	clk := &testClock{t: start.Add(50 * time.Second)}
	b := newTestBudget(0, clk) // no --rate-limit
	reset := start.Add(time.Minute)
	tk, _, _ := b.try(clk.now())
	b.done(tk, answer(http.StatusTooManyRequests, 1200, 0, reset, "Retry-After", "10"))
	clk.advance(10 * time.Second)
	probe := admitAll(b, clk.now())
	assert.Assert(t, is.Len(probe, 1))
	b.done(probe[0], answer(200, 0, 0, time.Time{})) // no headers on an unthrottled answer
	// Paced to 90% of the announced 1,200 a minute: 18 a second.
	tk, _, ok := b.try(clk.now())
	assert.Assert(t, ok)
	b.done(tk, answer(200, 0, 0, time.Time{}))
	_, wait, ok := b.try(clk.now())
	assert.Check(t, !ok)
	assert.Check(t, is.Equal(wait, time.Minute/1080))
}

func TestBudgetAcquireEndsWithTheContext(t *testing.T) {
	clk := &testClock{t: start}
	b := newTestBudget(0, clk)
	tk, _, _ := b.try(clk.now())
	b.done(tk, answer(200, 600, 0, start.Add(time.Minute)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := b.acquire(ctx)
	assert.Check(t, is.ErrorIs(err, context.Canceled))
}

// TestEveryAttemptPassesTheGate: client-go's retry of a 429 goes through the gate like the
// first attempt, and the gate, not client-go, holds the retry until Retry-After.
func TestEveryAttemptPassesTheGate(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(`{"id":1}`))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, Token: "glpat-test", RetryMax: 2})
	assert.NilError(t, err)
	_, err = c.GetRunner(t.Context(), 1)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(calls.Load(), int32(2)))
	assert.Check(t, is.Len(c.budget.admitted, 2))
}

// TestBudgetA5xxProbeSaysNothingAboutTheHeaders: a proxy's 502 without headers on the probe
// does not switch the gate to pacing; the next request probes again.
func TestBudgetA5xxProbeSaysNothingAboutTheHeaders(t *testing.T) {
	clk := &testClock{t: start}
	b := newTestBudget(0, clk)
	tk, _, _ := b.try(clk.now())
	b.done(tk, answer(200, 600, 0, start.Add(time.Minute)))
	clk.advance(time.Minute)
	probe := admitAll(b, clk.now())
	assert.Assert(t, is.Len(probe, 1))
	b.done(probe[0], answer(http.StatusBadGateway, 0, 0, time.Time{}))
	again := admitAll(b, clk.now())
	assert.Assert(t, is.Len(again, 1), "still one probe at a time")
	assert.Check(t, again[0].probe)
}
