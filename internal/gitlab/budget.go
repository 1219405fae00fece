package gitlab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// GitLabComRateLimit is the authenticated API limit of GitLab.com: 2,000 requests a minute per
// user (doc/user/gitlab_com/index.md). Self-managed instances have no limit unless an
// administrator sets one.
const GitLabComRateLimit = 2000

// budget is the one gate every HTTP attempt passes, retries and probes included: it spends the
// rate-limit budget GitLab announces and nothing more.
//
// GitLab's throttle (Rack::Attack, throttle_authenticated_api) counts requests per user in
// fixed windows aligned to the epoch and, when enabled, announces on each answer
// RateLimit-Limit, RateLimit-Remaining (the user's budget left in the window, after this
// request) and RateLimit-Reset (the window's end, unix seconds); a 429 adds Retry-After.
// Because Remaining is the server's count for the user, it already includes what other
// processes spent with the same user (the shards of one manifest); what it cannot include is
// requests still in flight. So requests go at full concurrency while Remaining, less this
// process's own requests in flight, stays above a reserve that covers the other processes'
// requests in flight (processes × concurrency) plus a margin for the token's other users.
// When the budget is spent the gate waits for the window's end and lets one probe through to
// learn the new window. Answers arrive out of order: within one window the smallest Remaining
// wins, and answers of an older window are ignored.
//
// Several GitLab versions send RateLimit-* headers only on throttled answers (a feature flag,
// rate_limiting_headers_for_unthrottled_requests, decides for the others). Without them the
// gate paces requests evenly to a configured budget (--rate-limit, per minute, split between
// the processes sharing the user). On any 429 it stops every request of the process until
// Retry-After, then slows down: with headers it doubles the reserve, without them it halves
// the pace (learning a pace from the 429's RateLimit-Limit when none was configured).
type budget struct {
	now func() time.Time

	mu   sync.Mutex
	wake chan struct{} // closed and replaced whenever an answer changes what may go

	// Configuration.
	perMinute   int // budget without headers, for all processes together; 0: none of its own
	processes   int // processes spending the same user's budget (shards)
	concurrency int // requests each process has in flight at most

	// The server's window, from RateLimit-* headers.
	headers   bool      // the last window's answers carried headers
	window    int64     // RateLimit-Reset of the window known (identifies it)
	limit     int       // RateLimit-Limit (per 60 s, whatever the window)
	perWindow int       // the window's own budget: RateLimit-Observed + Remaining
	remaining int       // smallest RateLimit-Remaining seen in the window
	reset     time.Time // local time at which the window ends (never early)
	seenAt    time.Time // when the last answer with headers arrived

	inflight int
	probing  bool // a probe is in flight: the others wait for its answer

	// Pacing without headers.
	pace      float64 // requests a minute this process sends; 0: unpaced
	nextPaced time.Time
	admitted  []time.Time // admissions in the last minute, to slow down from after a 429

	// After a 429.
	pausedUntil time.Time
	asked       time.Duration // the wait the last 429 asked for, before maxPause
	extra       int           // added to the reserve after 429s with headers
}

// staleAfter is how old the last announced Remaining may be before the gate re-reads it with a
// probe when little budget is left: other processes keep spending meanwhile.
const staleAfter = time.Second

// maxPause bounds one wait on Retry-After or a window's end, in case a server announces nonsense.
const maxPause = 10 * time.Minute

func newBudget(perMinute int, now func() time.Time) *budget {
	b := &budget{now: now, wake: make(chan struct{}), perMinute: max(perMinute, 0), processes: 1, concurrency: 8}
	b.pace = float64(b.perMinute)
	return b
}

// share tells the gate how many processes spend the same user's budget and how many requests
// each has in flight at most.
func (b *budget) share(processes, concurrency int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.processes, b.concurrency = max(processes, 1), max(concurrency, 1)
	b.pace = float64(b.perMinute) / float64(b.processes)
}

// reserve is the part of the announced budget this process leaves unspent: the other
// processes' requests in flight, which the server has not counted yet, and a margin for the
// token's other users (2%, at least 2).
func (b *budget) reserve() int {
	return b.processes*b.concurrency + max(2, b.perWindow/50) + b.extra
}

// ticket is one admitted request.
type ticket struct{ probe bool }

// try admits a request at now, or says how long to wait at most before trying again (an
// answer may allow it earlier).
func (b *budget) try(now time.Time) (ticket, time.Duration, bool) {
	if now.Before(b.pausedUntil) {
		return ticket{}, b.pausedUntil.Sub(now), false
	}
	if b.headers {
		headroom := b.remaining - b.inflight - b.reserve()
		windowOver := !now.Before(b.reset)
		stale := now.Sub(b.seenAt) > staleAfter && headroom > 0 && headroom < b.perWindow/2
		if windowOver || stale {
			if b.probing {
				return ticket{}, staleAfter, false
			}
			b.probing = true
			return b.admit(now, true), 0, true
		}
		if headroom > 0 {
			return b.admit(now, false), 0, true
		}
		return ticket{}, b.reset.Sub(now), false
	}
	if b.pace > 0 {
		if now.Before(b.nextPaced) {
			return ticket{}, b.nextPaced.Sub(now), false
		}
		// Evenly spaced, a burst of one: any span of time T holds at most T/interval+1.
		interval := time.Duration(float64(time.Minute) / b.pace)
		b.nextPaced = b.nextPaced.Add(interval)
		if b.nextPaced.Before(now) {
			b.nextPaced = now.Add(interval)
		}
	}
	return b.admit(now, false), 0, true
}

func (b *budget) admit(now time.Time, probe bool) ticket {
	b.inflight++
	b.admitted = append(b.admitted, now)
	if len(b.admitted) > 64 && now.Sub(b.admitted[0]) > time.Minute {
		i := 0
		for i < len(b.admitted) && now.Sub(b.admitted[i]) > time.Minute {
			i++
		}
		b.admitted = append(b.admitted[:0], b.admitted[i:]...)
	}
	return ticket{probe: probe}
}

// done records the answer to an admitted request (resp is nil when none came).
func (b *budget) done(t ticket, resp *http.Response) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.inflight--
	if t.probe {
		b.probing = false
	}
	defer b.broadcast()
	if resp == nil {
		return
	}
	h := resp.Header
	limit, lerr := strconv.Atoi(h.Get("RateLimit-Limit"))
	remaining, rerr := strconv.Atoi(h.Get("RateLimit-Remaining"))
	resetAt, serr := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64)
	// Only the throttle the API's requests count against: another one (a deprecated-API or
	// protected-path throttle) has its own windows and counts other requests.
	name := h.Get("RateLimit-Name")
	announced := lerr == nil && rerr == nil && serr == nil && limit > 0 && resetAt > 0 &&
		(name == "" || name == "throttle_authenticated_api")
	if announced {
		b.observe(now, h, limit, max(remaining, 0), resetAt)
	} else if t.probe && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
		// The new window's first answer from the API says nothing (a 5xx may come from a
		// proxy in front): this server announces its budget on throttled answers only, so
		// pace from here on.
		b.headers = false
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		b.throttled(now, h, announced, limit)
	}
}

// observe takes in one answer's RateLimit-* headers.
func (b *budget) observe(now time.Time, h http.Header, limit, remaining int, resetAt int64) {
	// The window's end in local time, from the server's own clock when it says what time it
	// is (Date, whole seconds: the estimate is never early, and the smallest one is the best).
	end := time.Unix(resetAt, 0)
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		end = now.Add(time.Duration(resetAt-date.Unix()) * time.Second)
	}
	if d := end.Sub(now); d > maxPause {
		end = now.Add(maxPause)
	}
	perWindow := limit
	if observed, err := strconv.Atoi(h.Get("RateLimit-Observed")); err == nil && observed >= 0 && remaining > 0 {
		perWindow = observed + remaining
	}
	switch {
	case resetAt > b.window || !b.headers:
		b.window, b.limit, b.remaining, b.reset, b.perWindow = resetAt, limit, remaining, end, perWindow
	case resetAt == b.window:
		b.remaining = min(b.remaining, remaining)
		b.limit = limit
		if remaining > 0 {
			b.perWindow = perWindow
		}
		if end.Before(b.reset) {
			b.reset = end
		}
	default:
		return // an answer from an earlier window, overtaken
	}
	b.headers = true
	b.seenAt = now
}

// throttled stops every request until Retry-After, then slows down.
func (b *budget) throttled(now time.Time, h http.Header, announced bool, limit int) {
	wait := time.Minute // GitLab's application-level limits answer Retry-After: 60
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s >= 0 {
		wait = time.Duration(s) * time.Second
	} else if announced && b.reset.After(now) {
		wait = b.reset.Sub(now)
	}
	b.asked = wait
	wait = min(wait, maxPause)
	b.pausedUntil = maxTime(b.pausedUntil, now.Add(wait))
	if announced {
		b.remaining = 0
		// Someone spent more than the reserve allowed for: leave more next time.
		b.extra = min(2*b.extra+b.concurrency, max(limit/4, 1))
	}
	// For the answers without headers after the pause: half the pace so far, or what the
	// 429 announced, shared between the processes.
	switch {
	case b.pace > 0:
		b.pace /= 2
	case announced:
		b.pace = float64(limit) * 0.9 / float64(b.processes)
	default:
		// Half the rate of the last minute (measured over at least a second), at least one
		// request a second: further 429s halve it again.
		recent, since := 0, now
		for _, t := range b.admitted {
			if now.Sub(t) <= time.Minute {
				recent++
				since = minTime(since, t)
			}
		}
		perMinute := float64(recent) / max(now.Sub(since).Minutes(), 1.0/60)
		b.pace = max(perMinute/2, 60)
	}
}

func (b *budget) broadcast() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// acquire waits until a request may go, or ctx ends.
func (b *budget) acquire(ctx context.Context) (ticket, error) {
	for {
		b.mu.Lock()
		t, wait, ok := b.try(b.now())
		wake := b.wake
		asked, paused := b.asked, b.now().Before(b.pausedUntil)
		b.mu.Unlock()
		if ok {
			return t, nil
		}
		if deadline, has := ctx.Deadline(); has && paused && time.Now().Add(wait).After(deadline) {
			// GitLab asked to wait past the run's --timeout: say so now instead of
			// sleeping until the timeout.
			return ticket{}, &RetryAfterError{Wait: asked, Left: max(time.Until(deadline), 0)}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ticket{}, ctx.Err()
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// budgetTransport puts every HTTP attempt through the gate, and bounds the attempt itself
// (sending, waiting and reading the answer) by timeout: a wait at the gate for the next
// window is not the request being slow.
type budgetTransport struct {
	next    http.RoundTripper
	b       *budget
	timeout time.Duration
}

func (t *budgetTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tk, err := t.b.acquire(r.Context())
	if err != nil {
		return nil, err
	}
	countAttempt(r)
	ctx, cancel := context.WithTimeout(r.Context(), t.timeout)
	resp, err := t.next.RoundTrip(r.WithContext(ctx))
	t.b.done(tk, resp)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if deadline, has := r.Context().Deadline(); has {
			if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s >= 0 {
				if wait := time.Duration(s) * time.Second; time.Now().Add(wait).After(deadline) {
					resp.Body.Close()
					cancel()
					return nil, &RetryAfterError{Wait: wait, Left: max(time.Until(deadline), 0)}
				}
			}
		}
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// RetryAfterError is a 429 whose Retry-After asks for a longer wait than the run's --timeout
// leaves: the request is not repeated, and the run stops at once.
type RetryAfterError struct {
	// Wait is what GitLab asked for; Left is what remained of --timeout.
	Wait, Left time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("GitLab rate-limited the request (429 Too Many Requests) and asked to wait %s, longer than the %s left of --timeout; try again later, or raise --timeout", e.Wait, e.Left.Round(time.Second))
}

// cancelOnClose releases an attempt's timeout once its answer has been read.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// unlimited is handed to client-go so that its own limiter (66% of RateLimit-Limit from the
// first answer on, whatever budget is left) stays out of the way of the gate.
type unlimited struct{}

func (unlimited) Wait(context.Context) error { return nil }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
