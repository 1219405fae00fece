package gitlab

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// server answers every request with h and records the last body.
func server(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, Token: "glpat-test", NoRetries: true})
	assert.NilError(t, err)
	return c
}

func body(t *testing.T, r *http.Request) map[string]any {
	t.Helper()
	b, _ := io.ReadAll(r.Body)
	m := map[string]any{}
	if len(b) > 0 {
		assert.Check(t, json.Unmarshal(b, &m))
	}
	return m
}

func TestUpdateHiddenVariableSendsNoMasked(t *testing.T) {
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Check(t, is.Equal(r.Method, http.MethodPut))
		assert.Check(t, is.Equal(r.URL.EscapedPath(), "/api/v4/projects/42/variables/RUNNER_TOKEN"))
		assert.Check(t, is.Equal(r.Header.Get("Private-Token"), "glpat-test"))
		b := body(t, r)
		_, hasMasked := b["masked"]
		assert.Check(t, !hasMasked, "a value-only update must not send masked: %v", b)
		assert.Check(t, is.Equal(b["value"], "glrt-new"))
		assert.Check(t, is.DeepEqual(b["filter"], map[string]any{"environment_scope": "production"}))
		w.Write([]byte(`{"key":"RUNNER_TOKEN","value":null,"hidden":true,"masked":true}`))
	})
	v := token.Secret("glrt-new")
	err := c.UpdateVariable(t.Context(), VarRef{Owner: spec.OwnerProject, OwnerID: 42, Key: "RUNNER_TOKEN", Scope: "production"}, VariableWrite{Value: &v})
	assert.NilError(t, err)
}

func TestCreateHiddenVariableSendsMaskedAndHidden(t *testing.T) {
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Check(t, is.Equal(r.URL.Path, "/api/v4/groups/10/variables"))
		b := body(t, r)
		assert.Check(t, is.Equal(b["masked_and_hidden"], true))
		// masked is sent too: GitLab before 16.11 drops masked_and_hidden silently.
		assert.Check(t, is.Equal(b["masked"], true))
		assert.Check(t, is.Equal(b["protected"], true))
		assert.Check(t, is.Equal(b["environment_scope"], "*"))
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"key":"K","value":null,"masked":true,"hidden":true}`))
	})
	v := token.Secret("glrt-x")
	err := c.CreateVariable(t.Context(), VarRef{Owner: spec.OwnerGroup, OwnerID: 10, Key: "K", Scope: "*"},
		VariableWrite{Value: &v, Protected: new(true), Masked: new(true), Hidden: true})
	assert.NilError(t, err)
}

func TestCreateRunnerSendsSpec(t *testing.T) {
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Check(t, is.Equal(r.Method+" "+r.URL.Path, "POST /api/v4/user/runners"))
		b := body(t, r)
		assert.Check(t, is.Equal(b["runner_type"], "project_type"))
		assert.Check(t, is.Equal(b["project_id"], float64(42)))
		assert.Check(t, is.DeepEqual(b["tag_list"], []any{"a", "b"}))
		assert.Check(t, is.Equal(b["run_untagged"], false))
		assert.Check(t, is.Equal(b["maximum_timeout"], float64(600)))
		_, hasGroup := b["group_id"]
		assert.Check(t, !hasGroup)
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":7,"token":"glrt-t3_abcdefghijklmnopqrst","token_expires_at":null}`))
	})
	nt, err := c.CreateRunner(t.Context(), RunnerAttrs{Type: spec.ProjectType, ProjectID: 42, TagList: []string{"a", "b"}, MaximumTimeout: 600})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(nt.RunnerID, int64(7)))
	assert.Check(t, is.Equal(nt.Token.Reveal(), "glrt-t3_abcdefghijklmnopqrst"))
	assert.Check(t, nt.ExpiresAt == nil)
}

func TestErrorSentences(t *testing.T) {
	cases := []struct {
		status int
		body   string
		code   int
		want   string
	}{
		{401, `{"message":"401 Unauthorized"}`, fail.CodeAuth, "GitLab refused the access token (401 Unauthorized: it is unknown, expired or revoked)"},
		{401, `{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`, fail.CodeAuth, "401 Unauthorized: Token is expired"},
		{403, `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api create_runner"}`, fail.CodeAuth, "lacks the scope for it (403 insufficient_scope; GitLab accepts api create_runner here)"},
		{403, `{"message":"403 Forbidden - Insufficient permissions"}`, fail.CodeAuth, "GitLab answered 403 (403 Forbidden - Insufficient permissions); the token's user needs the Maintainer role on the project"},
		{404, `{"message":"404 Project Not Found"}`, fail.CodeNotFound, "project 42 was not found (404)"},
		{400, `{"message":"400 Bad request - Tags list can not be empty when runner is not allowed to pick untagged jobs"}`, fail.CodeConflict, "GitLab rejected it (400): 400 Bad request - Tags list can not be empty"},
		{400, `{"message":{"base":["Only new variables can be set as masked and hidden."]}}`, fail.CodeConflict, "GitLab rejected it (400): Only new variables can be set as masked and hidden"},
		{429, "Retry later\n", fail.CodeFailure, "GitLab rate-limited the request (429 Too Many Requests); try again later"},
		{502, "<html>bad gateway</html>", fail.CodeFailure, "GitLab failed with HTTP 502"},
	}
	for _, tc := range cases {
		c := server(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		})
		_, err := c.CreateRunner(t.Context(), RunnerAttrs{Type: spec.ProjectType, ProjectID: 42})
		assert.Check(t, is.ErrorContains(err, tc.want), "status %d", tc.status)
		assert.Check(t, is.Equal(fail.Code(err), tc.code), "status %d", tc.status)
		assert.Check(t, is.Equal(IsNotFound(err), tc.status == 404))
		assert.Check(t, !IsTaken(err), "status %d", tc.status)
	}
}

// TestTakenIsASentinel: a create of a variable that exists is GitLab's 400 with "has already
// been taken" in the key's messages; callers test the sentinel, never the text.
func TestTakenIsASentinel(t *testing.T) {
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"message":{"key":["(RUNNER_TOKEN) has already been taken"]}}`)
	})
	ref := VarRef{Owner: spec.OwnerProject, OwnerID: 42, Key: "RUNNER_TOKEN", Scope: "*"}
	err := c.CreateVariable(t.Context(), ref, VariableWrite{Value: new(token.Secret("x")), Masked: new(true)})
	assert.Check(t, IsTaken(err), "%v", err)
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeConflict))
	assert.Check(t, is.ErrorContains(err, "(RUNNER_TOKEN) has already been taken"))
}

func TestConnectionRefusedIsAmbiguousAndNamesHost(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := New(Config{BaseURL: url, Token: "glpat-test", NoRetries: true})
	assert.NilError(t, err)
	_, err = c.CreateRunner(t.Context(), RunnerAttrs{Type: spec.InstanceType})
	assert.Check(t, is.ErrorContains(err, "could not be reached (connection refused)"))
	assert.Check(t, is.ErrorContains(err, url[len("http://"):]))
	assert.Check(t, IsAmbiguous(err))
}

// TestRetryHonoursRetryAfter: a 429 with Retry-After is retried by client-go's machinery with
// our backoff; a POST that failed with 503 is not repeated (it may have been acted on).
func TestRetryPolicy(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case r.Method == http.MethodGet && n == 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case r.Method == http.MethodGet:
			w.Write([]byte(`{"id":42,"path_with_namespace":"a/b"}`))
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, Token: "glpat-test", RetryMax: 3})
	assert.NilError(t, err)
	ns, err := c.ResolveProject(t.Context(), "a/b")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ns.ID, int64(42)))
	assert.Check(t, is.Equal(calls.Load(), int32(2)), "the 429 is retried once")

	calls.Store(10)
	_, err = c.CreateRunner(t.Context(), RunnerAttrs{Type: spec.InstanceType})
	assert.Check(t, is.ErrorContains(err, "HTTP 503"))
	assert.Check(t, is.Equal(calls.Load(), int32(11)), "a failed POST is not retried blindly")
}

func TestBaseURLRules(t *testing.T) {
	for _, ok := range []string{"https://gitlab.example.com", "https://gitlab.example.com/api/v4/", "http://127.0.0.1:8080", "http://localhost"} {
		_, err := checkBaseURL(ok, false)
		assert.Check(t, err, ok)
	}
	for url, want := range map[string]string{
		"http://gitlab.example.com":       "uses plain http",
		"gitlab.example.com":              "is not valid",
		"https://user:pw@gitlab.example.": "contains credentials",
		"":                                "no GitLab URL",
	} {
		_, err := checkBaseURL(url, false)
		assert.Check(t, is.ErrorContains(err, want), url)
		assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage))
	}
	_, err := checkBaseURL("http://gitlab.example.com", true)
	assert.Check(t, err)
}

// TestIdempotentCallsRetryAfterNoAnswer: a GET whose connection drops is repeated; a POST is not.
func TestIdempotentCallsRetryAfterNoAnswer(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 || r.Method == http.MethodPost {
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
			return
		}
		w.Write([]byte(`{"id":42,"path_with_namespace":"a/b"}`))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, Token: "glpat-test", RetryMax: 2})
	assert.NilError(t, err)
	_, err = c.ResolveProject(t.Context(), "a/b")
	assert.NilError(t, err)

	calls.Store(10)
	_, err = c.CreateRunner(t.Context(), RunnerAttrs{Type: spec.InstanceType})
	assert.Check(t, is.ErrorContains(err, "the connection was closed before GitLab answered"))
	assert.Check(t, IsAmbiguous(err))
	assert.Check(t, is.Equal(calls.Load(), int32(11)), "a POST without an answer is not repeated")
}

// TestListVariablesExpectingAsksForThePagesAtOnce: the pages the expected count fills are
// asked for without waiting for each other, and a page beyond them is still followed.
func TestListVariablesExpectingAsksForThePagesAtOnce(t *testing.T) {
	var mu sync.Mutex
	var pages []string
	page2 := make(chan struct{})
	together := false
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		mu.Lock()
		pages = append(pages, page)
		mu.Unlock()
		switch page {
		case "1": // answered only once page 2 was asked for too (or after 5 s, failing below)
			select {
			case <-page2:
				together = true
			case <-time.After(5 * time.Second):
			}
		case "2":
			close(page2)
		}
		n, _ := strconv.Atoi(page)
		var vs []string
		for i := (n - 1) * 100; i < min(n*100, 250); i++ {
			vs = append(vs, fmt.Sprintf(`{"key":"K%03d","environment_scope":"*"}`, i))
		}
		if n < 3 {
			w.Header().Set("X-Next-Page", strconv.Itoa(n+1))
		}
		w.Write([]byte("[" + strings.Join(vs, ",") + "]"))
	})
	vs, err := c.ListVariablesExpecting(t.Context(), spec.OwnerProject, 42, 150)
	assert.NilError(t, err)
	assert.Check(t, is.Len(vs, 250))
	assert.Check(t, is.Equal(vs[249].Key, "K249"), "pages in order")
	assert.Check(t, together, "pages 1 and 2 were asked for at once")
	assert.Check(t, is.Len(pages, 3))
	assert.Check(t, is.Equal(pages[2], "3"), "page 3 only after pages 1 and 2 answered: %v", pages)
}
