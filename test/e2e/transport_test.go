package e2e

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// TestRefusedProxyIsNamed: with HTTPS_PROXY set to a proxy that refuses connections, the
// sentence names the proxy and the GitLab host, not a raw "proxyconnect" error.
func TestRefusedProxyIsNamed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	proxy := l.Addr().String()
	l.Close() // nothing listens there now: the proxy refuses
	tg := &target{url: "https://gitlab.invalid"}
	res := tg.run(t, "glpat-notarealtoken000", []string{"HTTPS_PROXY=http://" + proxy},
		"status", "--project-id", "42", "--max-retries", "0")
	res.Assert(t, icmd.Expected{ExitCode: exitFailure})
	assert.Check(t, is.Contains(res.Stderr(), "the proxy "+proxy+" (from HTTPS_PROXY/HTTP_PROXY) could not be reached to connect to GitLab at gitlab.invalid (connection refused)"))
	assert.Check(t, !contains(res.Stderr(), "proxyconnect"), res.Stderr())
	errorLine(t, res, true)
}

// TestWrongGitLabURLIsNamed: --gitlab-url with a relative root GitLab does not have (the fake
// lives at /) gives the sentence that the URL may be wrong, not "project not found", and
// nothing changes.
func TestWrongGitLabURLIsNamed(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	before := tg.fake.State()
	for _, args := range [][]string{{"status", "--project-id", "42"}, {"create", "--project-id", "42"}} {
		res := tg.run(t, tg.seed.MaintainerToken, nil, append(args, "--gitlab-url", tg.url+"/gitlab", "--max-retries", "0")...)
		res.Assert(t, icmd.Expected{ExitCode: exitUsage})
		assert.Check(t, is.Contains(res.Stderr(), "the API answered 404 for GET /gitlab/api/v4/"))
		assert.Check(t, is.Contains(res.Stderr(), "so --gitlab-url may be wrong"))
		assert.Check(t, !contains(res.Stderr(), "was not found"), res.Stderr())
		errorLine(t, res, true)
	}
	assert.Check(t, is.DeepEqual(tg.fake.State(), before))
}

// TestGarbageAnswerIsNamed: a server answering 200 with an HTML page (a proxy's login page)
// gives one sentence naming the request and what came back, not a JSON decoder error.
func TestGarbageAnswerIsNamed(t *testing.T) {
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!DOCTYPE html><html><body>Please sign in</body></html>"))
	}))
	t.Cleanup(html.Close)
	tg := &target{url: html.URL}
	res := tg.run(t, "glpat-notarealtoken000", nil, "status", "--project-id", "42", "--max-retries", "0")
	res.Assert(t, icmd.Expected{ExitCode: exitFailure})
	assert.Check(t, is.Contains(res.Stderr(), "(HTTP 200, Content-Type text/html, starting \"<!DOCTYPE html><html><body>Please sign in"))
	assert.Check(t, is.Contains(res.Stderr(), "is not valid JSON, which GitLab's API never sends"))
	assert.Check(t, !contains(res.Stderr(), "invalid character"), res.Stderr())
	errorLine(t, res, true)
}
