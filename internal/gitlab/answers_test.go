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

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
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

// TestGarbageAnswersAreOneSentence: a successful answer that is not what GitLab's API sends
// (an HTML page, truncated JSON, an array for an object, an object without id) is one sentence
// naming the request and what came back, never a raw Go error and never "project 0".
func TestGarbageAnswersAreOneSentence(t *testing.T) {
	cases := []struct {
		name, ctype, body string
		want              []string
	}{
		{"html page", "text/html; charset=utf-8", "<html><body>Sign in glpat-abcdefghijklmnopqrst</body></html>",
			[]string{"cannot look up project a/b: the answer to GET http://", "/api/v4/projects/a%2Fb (HTTP 200, Content-Type text/html; charset=utf-8, starting \"<html><body>Sign in [REDACTED", "is not valid JSON, which GitLab's API never sends: check that --gitlab-url is your GitLab instance"}},
		{"truncated json", "application/json", `{"id": 42, "path_with_na`,
			[]string{"(HTTP 200, Content-Type application/json, starting \"{\\\"id\\\": 42", "is JSON that is cut short or malformed"}},
		{"array for an object", "application/json", `[{"id": 42}]`,
			[]string{"cannot look up project a/b: GitLab answered with a JSON array where its API returns an object"}},
		{"object without id", "application/json", `{"path_with_namespace": "a/b"}`,
			[]string{"cannot look up project a/b: GitLab's answer has no project id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := server(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.Write([]byte(tc.body))
			})
			_, err := c.ResolveProject(t.Context(), "a/b")
			for _, w := range tc.want {
				assert.Check(t, is.ErrorContains(err, w))
			}
			for _, raw := range []string{"invalid character", "unexpected EOF", "json: cannot unmarshal", "project 0", "abcdefghij"} {
				assert.Check(t, !contains(err, raw), "%v", err)
			}
		})
	}
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"token":"glrt-abcdefghijklmnopqrst"}`))
	})
	_, err := c.CreateRunner(t.Context(), RunnerAttrs{Type: spec.InstanceType})
	assert.Check(t, is.ErrorContains(err, "cannot create the instance_type runner: GitLab's answer has no runner id"))
	assert.Check(t, !contains(err, "runner 0") && !contains(err, "abcdefghij"), "%v", err)
}

// TestA404WithoutGitLabsBodySaysTheURLMayBeWrong: a 404 that is not GitLab's (a web server's
// page, a GitLab at another relative root) is not "project not found" but a sentence naming
// the path and --gitlab-url; GitLab's own 404 stays "not found".
func TestA404WithoutGitLabsBodySaysTheURLMayBeWrong(t *testing.T) {
	for _, body := range []string{"<html><body>Not Found</body></html>", "404 page not found\n", "", `{"detail":"nope"}`} {
		c := server(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(body))
		})
		_, err := c.ResolveProject(t.Context(), "a/b")
		assert.Check(t, is.ErrorContains(err, "cannot look up project a/b: the API answered 404 for GET /api/v4/projects/a%2Fb without GitLab's error body"), "body %q", body)
		assert.Check(t, is.ErrorContains(err, "so --gitlab-url may be wrong: set it to the address of the GitLab instance itself"))
		assert.Check(t, !IsNotFound(err), "a 404 that is not GitLab's says nothing about the object: %q", body)
		assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage))
		assert.Check(t, !contains(err, "was not found"))
	}
	for _, body := range []string{`{"message":"404 Project Not Found"}`, `{"error":"404 Not Found"}`} {
		c := server(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(body))
		})
		_, err := c.ResolveProject(t.Context(), "a/b")
		assert.Check(t, IsNotFound(err), "%v", err)
		assert.Check(t, is.ErrorContains(err, "project a/b was not found (404)"))
	}
}
