package gitlabfake

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
	"gotest.tools/v3/assert"
)

// client is the real client-go pointed at the fake, without retries.
func client(t *testing.T, s *Server, token string) *gitlab.Client {
	t.Helper()
	c, err := gitlab.NewClient(token, gitlab.WithBaseURL(s.URL()+"/api/v4"), gitlab.WithoutRetries())
	assert.NilError(t, err)
	return c
}

type rawResponse struct {
	Status int
	Header http.Header
	Body   string
}

// rawRequest sends one request. path is relative to the base URL; body is sent as
// JSON unless it is a url.Values (form) or a string (sent as is).
func rawRequest(t *testing.T, s *Server, method, path, token string, body any) rawResponse {
	t.Helper()
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd = strings.NewReader(b.Encode())
		contentType = "application/x-www-form-urlencoded"
	case string:
		rd = strings.NewReader(b)
		contentType = "application/json"
	default:
		buf, err := json.Marshal(b)
		assert.NilError(t, err)
		rd = bytes.NewReader(buf)
		contentType = "application/json"
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	assert.NilError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Private-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(out)}
}

// assertResponse checks the status code and the exact body.
func assertResponse(t *testing.T, got rawResponse, status int, body string) {
	t.Helper()
	assert.Equal(t, got.Status, status, "body: %s", got.Body)
	assert.Equal(t, got.Body, body)
}

type createdRunner struct {
	ID             int64   `json:"id"`
	Token          string  `json:"token"`
	TokenExpiresAt *string `json:"token_expires_at"`
}

// mustCreateRunner creates a runner through the API and returns its id and token.
func mustCreateRunner(t *testing.T, s *Server, token string, params map[string]any) createdRunner {
	t.Helper()
	resp := rawRequest(t, s, http.MethodPost, "/api/v4/user/runners", token, params)
	assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)
	var out createdRunner
	assert.NilError(t, json.Unmarshal([]byte(resp.Body), &out))
	return out
}

func projectRunner(t *testing.T, s *Server, seed Seed, extra map[string]any) createdRunner {
	t.Helper()
	p := map[string]any{"runner_type": "project_type", "project_id": seed.DeployProjectID}
	maps.Copy(p, extra)
	return mustCreateRunner(t, s, seed.MaintainerToken, p)
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	assert.NilError(t, json.Unmarshal([]byte(body), &v), body)
	return v
}
