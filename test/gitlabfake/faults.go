package gitlabfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault makes matching API requests misbehave. Faults are checked in the order they
// were added and the first one that applies wins.
//
// Note for Drop on GET: Go's http.Transport transparently retries an idempotent
// request (GET, HEAD) once when a reused keep-alive connection closes before any
// response arrives. With Times: 1 such a GET then succeeds on the retry; use Times
// 0 or 2 to make the drop visible. POST, PUT and DELETE are never retried this way.
type Fault struct {
	// Method to match; "" matches any.
	Method string `json:"method,omitempty"`
	// Path is matched against the path after /api/v4, segment by segment, each
	// segment unescaped (so platform%2Fdeploy is one segment). "*" matches one
	// segment and a trailing "/**" any suffix, including none. "" matches any path.
	// Example: "/projects/*/variables/*".
	Path string `json:"path,omitempty"`
	// Status to respond with instead of handling the request (0: handle normally).
	Status int `json:"status,omitempty"`
	// Body for Status. Default: GitLab-like JSON {"message":"500 Internal Server
	// Error"}, HTML for 502/503/504 and Rack::Attack's "Retry later\n" for 429.
	Body string `json:"body,omitempty"`
	// RetryAfter sets the Retry-After header (seconds).
	RetryAfter int `json:"retry_after,omitempty"`
	// Drop closes the connection without a response, before acting.
	Drop bool `json:"drop,omitempty"`
	// DropAfterAct performs the request, then closes the connection without a
	// response: the server acted but the client sees an error. Status is ignored.
	DropAfterAct bool `json:"drop_after_act,omitempty"`
	// Stall waits this long before handling; a cancelled request stops waiting and
	// is not handled. In JSON: a Go duration string ("2s") or nanoseconds.
	Stall time.Duration `json:"stall,omitempty"`
	// Times is how many matching requests the fault applies to (0: forever).
	Times int `json:"times,omitempty"`
	// Skip lets this many matching requests pass untouched first.
	Skip int `json:"skip,omitempty"`
}

// UnmarshalJSON accepts stall as a duration string or as nanoseconds.
func (f *Fault) UnmarshalJSON(b []byte) error {
	type plain Fault
	var aux struct {
		plain
		Stall json.RawMessage `json:"stall,omitempty"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*f = Fault(aux.plain)
	f.Stall = 0
	if len(aux.Stall) == 0 || string(aux.Stall) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(aux.Stall, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("fault stall: %w", err)
		}
		f.Stall = d
		return nil
	}
	var n int64
	if err := json.Unmarshal(aux.Stall, &n); err != nil {
		return fmt.Errorf("fault stall: %w", err)
	}
	f.Stall = time.Duration(n)
	return nil
}

// MarshalJSON writes stall as a duration string.
func (f Fault) MarshalJSON() ([]byte, error) {
	type plain Fault
	aux := struct {
		plain
		Stall string `json:"stall,omitempty"`
	}{plain: plain(f)}
	if f.Stall != 0 {
		aux.Stall = f.Stall.String()
	}
	return json.Marshal(aux)
}

// AddFault adds a fault.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes all faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults returns the active faults, with their remaining Times and Skip.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Fault{}
	for _, f := range s.faults {
		out = append(out, *f)
	}
	return out
}

// SetLatency adds d to every API request.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// takeFault finds the fault for a request and consumes one of its Skip or Times.
func (s *Server) takeFault(method string, segs []string) *Fault {
	for i, f := range s.faults {
		if !f.matches(method, segs) {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			continue
		}
		applied := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &applied
	}
	return nil
}

func (f *Fault) matches(method string, segs []string) bool {
	if f.Method != "" && !strings.EqualFold(f.Method, method) {
		return false
	}
	if f.Path == "" {
		return true
	}
	pat, ok := splitSegments(strings.TrimPrefix(f.Path, "/api/v4"))
	if !ok {
		return false
	}
	if n := len(pat); n > 0 && pat[n-1] == "**" {
		pat = pat[:n-1]
		if len(segs) < len(pat) {
			return false
		}
		segs = segs[:len(pat)]
	}
	if len(pat) != len(segs) {
		return false
	}
	for i, p := range pat {
		if p != "*" && p != segs[i] {
			return false
		}
	}
	return true
}

func faultResponse(f *Fault) *response {
	resp := newResponse()
	if f.RetryAfter > 0 {
		resp.header.Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	if f.Body != "" {
		ct := "text/plain; charset=utf-8"
		if b := strings.TrimSpace(f.Body); strings.HasPrefix(b, "{") || strings.HasPrefix(b, "[") {
			ct = "application/json"
		}
		resp.text(f.Status, ct, f.Body)
		return resp
	}
	text := strconv.Itoa(f.Status) + " " + http.StatusText(f.Status)
	switch f.Status {
	case http.StatusTooManyRequests:
		resp.text(f.Status, "text/plain", "Retry later\n")
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		// What a load balancer or Workhorse in front of Rails answers: not JSON.
		resp.text(f.Status, "text/html; charset=utf-8", "<html>\n<head><title>"+text+"</title></head>\n<body>\n<center><h1>"+text+"</h1></center>\n</body>\n</html>\n")
	default:
		resp.json(f.Status, map[string]string{"message": text})
	}
	return resp
}

// Rate limiting.

type rateKey struct {
	userID int64
	window int64
}

// Throttle is GitLab's throttle_authenticated_api (Rack::Attack; gl:lib/gitlab/rack_attack.rb,
// lib/gitlab/rack_attack/request.rb and request_throttle_data.rb): Requests per Period for each
// user, counted in fixed windows aligned to the epoch (Rack::Attack's cache key is
// now / period), on the fake's clock. Every token of a user shares the budget; a request is
// counted only when its token identifies a user (unknown, expired or revoked tokens, job
// tokens and runner tokens in a body are not), and it is counted even when it is throttled.
// A throttled request never reaches the API: 429, text/plain "Retry later\n", with
// RateLimit-Name, -Limit (normalised to 60 s, rounded up), -Observed, -Remaining, -Reset
// (unix seconds of the window's end), -ResetTime (HTTP date) and Retry-After (seconds to the
// window's end, 1 to Period).
type Throttle struct {
	// Requests per Period per user; 0 turns the throttle off.
	Requests int
	// Period is the window, in whole seconds (GitLab's throttle_*_period_in_seconds); 0: 60 s.
	Period time.Duration
	// HeadersOnEveryAnswer sends the RateLimit-* headers (without Retry-After and ResetTime) on
	// unthrottled answers too, as GitLab does with the rate_limiting_headers_for_unthrottled_requests
	// feature flag (18.6, off by default; gl:lib/gitlab/middleware/rack_attack_headers.rb).
	// Without it only a 429 carries them.
	HeadersOnEveryAnswer bool
}

// SetThrottle configures the authenticated API throttle.
func (s *Server) SetThrottle(t Throttle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Period < time.Second {
		t.Period = time.Minute
	}
	t.Period = t.Period.Truncate(time.Second)
	s.throttleCfg = t
	s.rlCounts = map[rateKey]int{}
}

// SetRateLimit is SetThrottle of perMinute requests a minute, with the headers on every
// answer. 0 disables it, and then no RateLimit headers are sent at all.
func (s *Server) SetRateLimit(perMinute int) {
	s.SetThrottle(Throttle{Requests: perMinute, HeadersOnEveryAnswer: true})
}

// Count429 is the number of 429 responses sent, throttled or from a Fault.
func (s *Server) Count429() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count429
}

// throttle counts the request and sets the RateLimit headers; over the limit it
// answers 429 and returns false.
func (s *Server) throttle(c *call, u *user) bool {
	cfg := s.throttleCfg
	period := int64(cfg.Period / time.Second)
	now := s.now()
	epoch := now.Unix()
	window := epoch / period
	for k := range s.rlCounts {
		if k.window < window {
			delete(s.rlCounts, k)
		}
	}
	k := rateKey{u.id, window}
	s.rlCounts[k]++
	observed := s.rlCounts[k]
	retryAfter := period - epoch%period
	reset := epoch + retryAfter
	throttled := observed > cfg.Requests
	if !throttled && !cfg.HeadersOnEveryAnswer {
		return true
	}
	h := c.resp.header
	h.Set("RateLimit-Name", "throttle_authenticated_api")
	h.Set("RateLimit-Limit", strconv.FormatInt((int64(cfg.Requests)*60+period-1)/period, 10))
	h.Set("RateLimit-Observed", strconv.Itoa(observed))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(cfg.Requests-observed, 0)))
	h.Set("RateLimit-Reset", strconv.FormatInt(reset, 10))
	if !throttled {
		return true
	}
	h.Set("Retry-After", strconv.FormatInt(retryAfter, 10))
	h.Set("RateLimit-ResetTime", time.Unix(reset, 0).UTC().Format(http.TimeFormat))
	c.resp.text(http.StatusTooManyRequests, "text/plain", "Retry later\n")
	s.count429++
	return false
}

// SpendRateLimit counts n requests of the user behind token in the throttle's current
// window, as the token's other users (a pipeline's other jobs) would have spent them.
func (s *Server) SpendRateLimit(token string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[token]
	if t == nil || s.throttleCfg.Requests == 0 {
		return
	}
	period := int64(s.throttleCfg.Period / time.Second)
	s.rlCounts[rateKey{t.userID, s.now().Unix() / period}] += n
}
