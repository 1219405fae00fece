package gitlabfake

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the fake GitLab. It is an http.Handler; Start serves it on a local port.
type Server struct {
	release               gitlabRelease
	varWrites             []Variable
	groupScopesUnlicensed bool
	mu                    sync.Mutex

	clock       func() time.Time
	clockOffset time.Duration
	rng         *rand.ChaCha8

	users         []*user
	tokens        map[string]*accessToken
	groups        []*group
	projects      []*project
	members       map[memberKey]Role
	runners       []*runner // ordered by id
	variables     []*variable
	nextUserID    int64
	nextGroupID   int64
	nextProjectID int64
	nextRunnerID  int64
	nextManagerID int64
	nextVarID     int64
	nextTokenID   int64

	runnerTokenExpiration time.Duration
	// allowRegistrationToken is the instance setting allow_runner_registration_token.
	allowRegistrationToken bool
	instanceRunnersToken   string
	seed                   *Seed

	faults      []*Fault
	latency     time.Duration
	throttleCfg Throttle
	rlCounts    map[rateKey]int
	count429    int

	requests []Request
	writes   int

	ts      *httptest.Server
	baseURL string
	closing chan struct{}
	once    sync.Once
}

// New returns an empty world using the real clock.
func New() *Server {
	return &Server{
		clock:   time.Now,
		rng:     rand.NewChaCha8([32]byte{'g', 'i', 't', 'l', 'a', 'b', 'f', 'a', 'k', 'e'}),
		release: gitlabRelease{major: 19, minor: 6, patch: 1, enterprise: true, tier: TierPremium},
		tokens:  map[string]*accessToken{},
		members: map[memberKey]Role{},
		// Kinds get distinct id ranges so a test can't mix a group id up with a project id.
		nextGroupID:   99,
		nextProjectID: 199,
		nextRunnerID:  999,
		rlCounts:      map[rateKey]int{},
		closing:       make(chan struct{}),
	}
}

// NewTest returns a seeded, started server that is closed when the test ends. Options choose
// the emulated GitLab (GitLab("16.5.0", "")); the default is NewestVersion EE Premium.
func NewTest(t testing.TB, opts ...Option) (*Server, Seed) {
	t.Helper()
	s := New()
	for _, o := range opts {
		o(s)
	}
	s.Seed()
	s.Start()
	t.Cleanup(s.Close)
	return s, s.Seed()
}

// Start serves the fake on 127.0.0.1 with a random port and returns the base URL
// (without /api/v4). Calling it again returns the same URL.
func (s *Server) Start() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ts == nil {
		s.ts = httptest.NewServer(s)
		s.baseURL = s.ts.URL
	}
	return s.baseURL
}

// SetBaseURL records the URL the server is reachable at, for servers not started with
// Start (the standalone binary). Seed().URL and URL() return it.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimSuffix(u, "/")
}

// URL returns the base URL without /api/v4, or "" before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// Close stops the server. Stalled requests are released first so Close never waits
// for a Stall or latency to run out.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closing) })
	s.mu.Lock()
	ts := s.ts
	s.mu.Unlock()
	if ts != nil {
		ts.CloseClientConnections()
		ts.Close()
	}
}

// SetClock replaces the clock (and forgets any advance made through /-/fake/clock).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = now
	s.clockOffset = 0
}

// AdvanceClock moves the fake's clock forward by d.
func (s *Server) AdvanceClock(d time.Duration) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clockOffset += d
	return s.now()
}

// SetRunnerTokenExpiration sets the runner_token_expiration_interval application
// setting, for every runner type. New and reset tokens then expire d from now.
// 0 means tokens never expire.
func (s *Server) SetRunnerTokenExpiration(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runnerTokenExpiration = d
}

// now is the fake's time, truncated to milliseconds (GitLab's JSON precision) so
// that times read back from the API equal the ones the inspection helpers return.
func (s *Server) now() time.Time {
	return s.clock().Add(s.clockOffset).UTC().Truncate(time.Millisecond)
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

// randomString is Devise.friendly_token-like: n chars of [A-Za-z0-9_-].
func (s *Server) randomString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = tokenAlphabet[s.rng.Uint64()%uint64(len(tokenAlphabet))]
	}
	return string(b)
}

// sleep waits d, or until the request is cancelled or the server closes. It
// reports whether the full duration passed.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// ServeHTTP serves /api/v4/ and the /-/fake/ control endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/-/fake/") {
		s.serveControl(w, r)
		return
	}
	escaped := r.URL.EscapedPath()
	if escaped == "/api/graphql" {
		s.serveGraphQL(w, r)
		return
	}
	if escaped != "/api/v4" && !strings.HasPrefix(escaped, "/api/v4/") {
		// Outside the API GitLab answers with its HTML 404 page.
		http.Error(w, "404 Not Found", http.StatusNotFound)
		return
	}
	s.serveAPI(w, r)
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil { // nil for requests built by hand and passed to ServeHTTP
		body, _ = io.ReadAll(io.LimitReader(r.Body, 16<<20))
	}
	segs, ok := splitSegments(strings.TrimPrefix(r.URL.EscapedPath(), "/api/v4"))
	rec := Request{
		Method:  r.Method,
		Path:    r.URL.Path,
		RawPath: r.URL.EscapedPath(),
		Query:   redactQuery(r.URL.RawQuery),
		Body:    redactBody(body, r.Header.Get("Content-Type")),
		Start:   time.Now(),
	}

	s.mu.Lock()
	latency := s.latency
	var f *Fault
	if ok {
		f = s.takeFault(r.Method, segs)
	}
	s.mu.Unlock()

	if !s.sleep(r.Context(), latency) {
		s.record(rec)
		return
	}
	if f != nil {
		if !s.sleep(r.Context(), f.Stall) {
			s.record(rec)
			return
		}
		if f.Drop {
			s.record(rec)
			drop(w)
			return
		}
		if f.Status != 0 && !f.DropAfterAct {
			resp := faultResponse(f)
			s.mu.Lock()
			if resp.status == http.StatusTooManyRequests {
				s.count429++
			}
			s.mu.Unlock()
			rec.Status = resp.status
			s.record(rec)
			resp.write(w)
			return
		}
	}

	var resp *response
	if !ok {
		resp = newResponse()
		resp.json(http.StatusNotFound, map[string]string{"error": "404 Not Found"})
	} else {
		resp = s.handleAPI(r, body, segs)
	}

	if f != nil {
		if f.RetryAfter > 0 {
			resp.header.Set("Retry-After", itoa(int64(f.RetryAfter)))
		}
		if f.DropAfterAct {
			s.record(rec)
			drop(w)
			return
		}
	}
	rec.Status = resp.status
	s.record(rec)
	resp.write(w)
}

// drop closes the connection without writing a response.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Without a hijackable connection the server aborts the response instead.
	panic(http.ErrAbortHandler)
}

// splitSegments splits an escaped path into unescaped segments, so that an
// URL-encoded full path such as platform%2Fdeploy stays one segment.
func splitSegments(escaped string) ([]string, bool) {
	escaped = strings.Trim(escaped, "/")
	if escaped == "" {
		return nil, true
	}
	parts := strings.Split(escaped, "/")
	for i, p := range parts {
		u, err := pathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}
