package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// collector is the host a hostile redirect points to: it records everything that reaches it.
type collector struct {
	mu   sync.Mutex
	seen []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.seen = append(c.seen, r.Method+" "+r.URL.Path+" token="+r.Header.Get("PRIVATE-TOKEN")+" body="+string(body))
	c.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"id": 1, "key": "RUNNER_TOKEN"}`))
}

func (c *collector) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string{}, c.seen...)
}

// redirector serves the fake GitLab but answers the requests redirect picks with a redirect
// to the collector, keeping the path (as a moved instance or a hostile proxy would).
func redirector(t *testing.T, status int, redirect func(*http.Request) bool) (*target, *collector) {
	t.Helper()
	fake := gitlabfake.New()
	seed := fake.Seed()
	col := &collector{}
	elsewhere := httptest.NewServer(col)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if redirect(r) {
			http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), status)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	fake.SetBaseURL(ts.URL)
	t.Cleanup(func() { fake.Close(); ts.Close(); elsewhere.Close() })
	seed.URL = ts.URL
	tg := &target{url: ts.URL, fake: fake, seed: seed}
	tg.secrets = append(tg.secrets, seed.AdminToken, seed.OwnerToken, seed.MaintainerToken, seed.DeveloperToken, seed.ReadAPIToken)
	return tg, col
}

// TestRedirectsAreNeverFollowed: a redirect of any request (302 to another host, 307/308 on a
// variable write that would re-send the runner token) is refused: nothing reaches the other
// host, the command fails saying where the request went and what to set --gitlab-url to, and
// nothing is reported stored.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	t.Run("302 on every request", func(t *testing.T) {
		tg, col := redirector(t, http.StatusFound, func(*http.Request) bool { return true })
		r := tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", "42")
		r.Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "was answered with a redirect (302)"})
		assert.Check(t, is.Contains(r.Stderr(), tg.url+"/api/v4/"), "names the URL it was sent to")
		assert.Check(t, is.Contains(r.Stderr(), "set --gitlab-url to http://127.0.0.1:"), "says what to set --gitlab-url to")
		assert.Check(t, is.Len(col.requests(), 0), "the other host received %v", col.requests())
		assert.Check(t, is.Len(tg.fake.Runners(), 0))
	})
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status)+" on the variable write", func(t *testing.T) {
			tg, col := redirector(t, status, func(r *http.Request) bool {
				return r.Method != http.MethodGet && strings.Contains(r.URL.Path, "/variables")
			})
			r := tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", "42", "-o", "json")
			r.Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "redirect"})
			assert.Check(t, !strings.Contains(r.Stdout(), `"action"`), "reported a result: %s", r.Stdout())
			assert.Check(t, is.Len(col.requests(), 0), "the runner token went to %v", col.requests())
			assert.Check(t, is.Len(tg.fake.Variables(), 0))
			assert.Check(t, is.Len(tg.fake.Runners(), 0), "the runner whose token could not be stored is deleted again")
		})
	}
}
