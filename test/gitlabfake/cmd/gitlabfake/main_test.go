package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listeningRe = regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`)

func TestRunServesUntilCancelled(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "fake.env")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--env-file", envFile, "--runner-token-expiration", "72h", "--rate-limit", "600"}, &stdout, &stderr)
	}()

	var url string
	deadline := time.Now().Add(5 * time.Second)
	for url == "" && time.Now().Before(deadline) {
		if m := listeningRe.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
		}
		time.Sleep(5 * time.Millisecond)
	}
	assert.Assert(t, url != "", "stdout: %q stderr: %q", stdout.String(), stderr.String())

	env, err := os.ReadFile(envFile)
	assert.NilError(t, err)
	vars := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(env)), "\n") {
		k, v, ok := strings.Cut(line, "=")
		assert.Assert(t, ok, line)
		vars[k] = v
	}
	assert.Equal(t, vars["GITLAB_URL"], url)
	assert.Equal(t, vars["GITLAB_API_URL"], url+"/api/v4")
	assert.Equal(t, vars["GITLAB_TOKEN"], vars["OWNER_TOKEN"])
	for _, k := range []string{"ADMIN_TOKEN", "MAINTAINER_TOKEN", "DEVELOPER_TOKEN", "READ_API_TOKEN", "CREATE_RUNNER_TOKEN", "EXPIRED_TOKEN", "REVOKED_TOKEN"} {
		assert.Check(t, is.Regexp(`^glpat-`, vars[k]), k)
	}
	assert.Equal(t, vars["DEPLOY_PROJECT_ID"], "42")

	req, _ := http.NewRequest(http.MethodPost, url+"/api/v4/user/runners", strings.NewReader(`{"runner_type":"project_type","project_id":42}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Private-Token", vars["MAINTAINER_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusCreated, string(body))
	assert.Check(t, is.Contains(string(body), `"token_expires_at":"`))
	assert.Equal(t, resp.Header.Get("RateLimit-Limit"), "600")

	resp, err = http.Get(url + "/-/fake/state")
	assert.NilError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Check(t, is.Contains(string(body), `"token": "glrt-t3_`))

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, code, 0, stderr.String())
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunWithoutSeed(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "fake.env")
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--seed=false", "--env-file", envFile}, &stdout, &stderr) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasPrefix(stdout.String(), "listening on ") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	assert.Equal(t, <-done, 0)
	env, err := os.ReadFile(envFile)
	assert.NilError(t, err)
	assert.Check(t, !strings.Contains(string(env), "TOKEN"))
	assert.Check(t, strings.HasPrefix(string(env), "GITLAB_URL=http://127.0.0.1:"))
}

func TestRunBadFlag(t *testing.T) {
	var stdout, stderr syncBuffer
	assert.Equal(t, run(t.Context(), []string{"--nope"}, &stdout, &stderr), 2)
	assert.Check(t, is.Contains(stderr.String(), "flag provided but not defined: -nope"))
}
