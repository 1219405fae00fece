package gitlab

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// TestAfterRetriesOnlyWhenRetried: "after retries" is said when the call was in fact sent more
// than once, never with retries off or for a POST that is never repeated.
func TestAfterRetriesOnlyWhenRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)

	off, err := New(Config{BaseURL: srv.URL, Token: "glpat-test", NoRetries: true})
	assert.NilError(t, err)
	_, err = off.ResolveProject(t.Context(), "a/b")
	assert.Check(t, is.ErrorContains(err, "GitLab failed with HTTP 502; the command is safe to run again"))
	assert.Check(t, !contains(err, "after retries"), "%v", err)
	assert.Check(t, is.Equal(calls.Load(), int32(1)))

	on, err := New(Config{BaseURL: srv.URL, Token: "glpat-test", RetryMax: 1, MaxRetryWait: 1})
	assert.NilError(t, err)
	calls.Store(0)
	_, err = on.ResolveProject(t.Context(), "a/b")
	assert.Check(t, is.ErrorContains(err, "GitLab failed with HTTP 502 after retries"))
	assert.Check(t, is.Equal(calls.Load(), int32(2)))

	calls.Store(0)
	_, err = on.CreateRunner(t.Context(), RunnerAttrs{Type: spec.InstanceType})
	assert.Check(t, is.ErrorContains(err, "HTTP 502 (not retried"))
	assert.Check(t, !contains(err, "after retries"), "%v", err)
	assert.Check(t, is.Equal(calls.Load(), int32(1)))
}

func contains(err error, s string) bool {
	return err != nil && len(s) > 0 && strings.Contains(err.Error(), s)
}

// TestRetryAfterBeyondTheTimeoutStopsAtOnce: a 429 asking for longer than the run's --timeout
// leaves is reported with the wait GitLab asked for, without sleeping or repeating it.
func TestRetryAfterBeyondTheTimeoutStopsAtOnce(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, Token: "glpat-test", RetryMax: 3})
	assert.NilError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = c.ResolveProject(ctx, "a/b")
	assert.Check(t, is.ErrorContains(err, "cannot look up project a/b: GitLab rate-limited the request (429 Too Many Requests) and asked to wait 1h0m0s, longer than the"))
	assert.Check(t, is.ErrorContains(err, "left of --timeout"))
	assert.Check(t, ctx.Err() == nil, "the run stopped before its --timeout")
	assert.Check(t, is.Equal(calls.Load(), int32(1)), "not repeated")

	// A second call of the same run stops at the gate, without sending anything.
	_, err = c.ResolveProject(ctx, "a/b")
	assert.Check(t, is.ErrorContains(err, "asked to wait 1h0m0s"))
	assert.Check(t, is.Equal(calls.Load(), int32(1)))
}
