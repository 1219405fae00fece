package e2e

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/faults"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// echoServer serves the fake GitLab, except for requests matching an echo fault: those get an
// error whose body repeats the request (its PRIVATE-TOKEN header and its body, which for a
// variable write holds the runner token), as a misbehaving proxy or a verbose GitLab might.
type echoServer struct {
	fake *gitlabfake.Server

	mu     sync.Mutex
	faults []echoFault
}

type echoFault struct {
	method string
	path   *regexp.Regexp // matched against the path after /api/v4
	status int
	skip   int // matching requests to let through first
}

func (e *echoServer) set(method, path string, status int) { e.setAfter(method, path, status, 0) }

func (e *echoServer) setAfter(method, path string, status, skip int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = []echoFault{{method: method, path: regexp.MustCompile("^" + path + "$"), status: status, skip: skip}}
}

func (e *echoServer) clear() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
}

func (e *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	var f *echoFault
	for i := range e.faults {
		ef := &e.faults[i]
		if ef.method != r.Method || !ef.path.MatchString(strings.TrimPrefix(r.URL.Path, "/api/v4")) {
			continue
		}
		if ef.skip > 0 {
			ef.skip--
			continue
		}
		f = ef
	}
	e.mu.Unlock()
	if f == nil {
		e.fake.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	echo := fmt.Sprintf("%s %s with PRIVATE-TOKEN %s and body %s", r.Method, r.URL.RequestURI(), r.Header.Get("PRIVATE-TOKEN"), body)
	var answer any
	switch {
	case f.status == http.StatusUnauthorized:
		answer = map[string]string{"error": "invalid_token", "error_description": "Token is not valid for " + echo}
	case f.status == http.StatusForbidden:
		answer = map[string]string{"message": "403 Forbidden - " + echo}
	case f.status >= 500:
		answer = map[string]string{"message": "500 Internal Server Error while handling " + echo}
	default:
		answer = map[string]any{"message": map[string][]string{"value": {"is invalid: " + echo}}}
	}
	b, _ := json.Marshal(answer)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	_, _ = w.Write(b)
}

// newEchoTarget is a fake GitLab behind an echoServer.
func newEchoTarget(t *testing.T) (*target, *echoServer) {
	t.Helper()
	fake := gitlabfake.New()
	seed := fake.Seed()
	echo := &echoServer{fake: fake}
	ts := httptest.NewServer(echo)
	fake.SetBaseURL(ts.URL)
	t.Cleanup(func() { fake.Close(); ts.Close() })
	seed.URL = ts.URL
	tg := &target{url: ts.URL, fake: fake, seed: seed}
	tg.secrets = append(tg.secrets, seed.AdminToken, seed.OwnerToken, seed.MaintainerToken, seed.DeveloperToken, seed.ReadAPIToken)
	return tg, echo
}

// TestNoSecretInAnyOutput runs create, status, rotate (with the access token and with the
// runner's own token) and delete, in text and JSON logs at trace level, succeeding and failing
// with GitLab answers that echo the request (tokens included) back; then it greps everything
// printed and every dotenv file for token shapes and for every token value the fake ever held.
func TestNoSecretInAnyOutput(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			tg, echo := newEchoTarget(t)
			tok := tg.seed.MaintainerToken
			dir := t.TempDir()
			var (
				printed []string
				seen    = append([]string{}, tg.secrets...)
			)
			logFlags := []string{"--log-level", "trace", "--log-format", format}
			step := func(name string, env []string, code int, args ...string) *icmd.Result {
				t.Helper()
				seen = append(seen, faults.Secrets(tg.fake.State())...)
				for _, a := range args {
					// The binary never receives a token in argv.
					assert.Assert(t, !faults.TokenShape.MatchString(a), "%s: an argument is token-shaped", name)
				}
				r := tg.run(t, tok, env, append(args, logFlags...)...)
				r.Assert(t, icmd.Expected{ExitCode: code})
				seen = append(seen, faults.Secrets(tg.fake.State())...)
				printed = append(printed, r.Stdout(), r.Stderr())
				return r
			}
			dotenv := func(name string) string { return filepath.Join(dir, name+".env") }

			step("create", nil, 0, "create", "--project-id", "42", "--dotenv", dotenv("create"))
			step("create again, json", nil, 0, "create", "--project-id", "42", "-o", "json")
			step("status", nil, 0, "status", "--project-id", "42", "-o", "json")
			step("rotate", nil, 0, "rotate", "--project-id", "42", "--dotenv", dotenv("rotate"))
			cur, _ := tg.fake.Variable("project", 42, "RUNNER_TOKEN", "*")
			step("rotate with the runner's token", []string{"RUNNER_TOKEN=" + cur.Value}, 0, "rotate", "--project-id", "42", "--use-runner-token", "-o", "json")

			// Failures whose answers echo the request, access token and runner tokens included.
			echo.set("GET", "/projects/[^/]+/variables/RUNNER_TOKEN", http.StatusUnauthorized)
			step("401 echo", nil, 3, "rotate", "--project-id", "42")
			echo.set("PUT", "/projects/[^/]+/variables/RUNNER_TOKEN", http.StatusForbidden)
			step("403 echo on the mark", nil, 3, "rotate", "--project-id", "42")
			echo.set("POST", "/runners/[0-9]+/reset_authentication_token", http.StatusInternalServerError)
			step("500 echo on the reset", nil, 1, "rotate", "--project-id", "42", "--max-retries", "0")
			echo.clear()
			step("rotate repairs", nil, 0, "rotate", "--project-id", "42")
			// A 403 on the store: its request body holds the new runner token.
			echo.setAfter("PUT", "/projects/[^/]+/variables/RUNNER_TOKEN", http.StatusForbidden, 1) // the mark passes
			r := step("403 echo on the store", nil, 3, "rotate", "--project-id", "42")
			// In JSON logs the final error is a log entry, its quotes escaped.
			assert.Check(t, strings.Contains(r.Stderr(), `"value":"[REDACTED glrt-]"`) || strings.Contains(r.Stderr(), `\"value\":\"[REDACTED glrt-]\"`), "the echoed new token reached the message, redacted")
			echo.clear()
			// The runner's current token (the failed store left the variable stale): verify
			// accepts it, then the reset's 403 answer echoes it.
			live := tg.fake.Runners()[0].Token
			echo.set("POST", "/runners/reset_authentication_token", http.StatusForbidden)
			step("403 echo with the runner's token in the body", []string{"RUNNER_TOKEN=" + live}, 5, "rotate", "--project-id", "42", "--use-runner-token")
			echo.clear()
			step("rotate repairs again", nil, 0, "rotate", "--project-id", "42")
			step("delete", nil, 0, "delete", "--project-id", "42")
			// A 422 on the variable create: its body holds the new runner's token.
			echo.set("POST", "/projects/[^/]+/variables", http.StatusUnprocessableEntity)
			step("422 echo on the store", nil, 5, "create", "--project-id", "42", "--dotenv", dotenv("failed"))
			echo.clear()

			seen = append(seen, faults.Secrets(tg.fake.State())...)
			for _, name := range []string{"create", "rotate", "failed"} {
				if b, err := os.ReadFile(dotenv(name)); err == nil {
					printed = append(printed, string(b))
				}
			}
			all := strings.Join(printed, "\n")
			assert.Check(t, is.Len(faults.Leaks(all, seen), 0))
			assert.Check(t, strings.Count(all, "[REDACTED") > 0, "the echoed tokens were redacted, not absent")
		})
	}
}

// TestTokenNotInArgv: while a call is in flight, the process's command line holds no token;
// the access token travels in the environment only.
func TestTokenNotInArgv(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tg.fake.AddFault(gitlabfake.Fault{Method: "GET", Path: "/projects/*/variables/*", Stall: 2 * time.Second, Times: 1})
	cmd := exec.Command(binary, "create", "--project-id", "42")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CI_SERVER_URL=" + tg.url, "GITLAB_TOKEN=" + tg.seed.MaintainerToken}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	assert.NilError(t, cmd.Start())
	deadline := time.Now().Add(10 * time.Second)
	for len(tg.fake.Faults()) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
	waitErr := cmd.Wait()
	if err != nil {
		t.Skipf("cannot read /proc/<pid>/cmdline here: %v", err)
	}
	assert.NilError(t, waitErr, out.String())
	args := strings.ReplaceAll(string(cmdline), "\x00", " ")
	assert.Check(t, is.Contains(args, "create --project-id 42"))
	tg.assertNoSecrets(t, args+out.String())
	assert.Check(t, !strings.Contains(args, tg.seed.MaintainerToken))
}

// TestAccessTokenSources: the token comes from GITLAB_TOKEN or a --token-file only the owner
// can read; a file other users can read is refused before anything is sent.
func TestAccessTokenSources(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	dir := t.TempDir()
	file := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		assert.NilError(t, os.WriteFile(p, []byte(tg.seed.MaintainerToken+"\n"), 0o600))
		assert.NilError(t, os.Chmod(p, mode))
		return p
	}
	ok := file("ok", 0o600)
	tg.run(t, "", nil, "status", "--project-id", "42", "--token-file", ok).Assert(t, icmd.Expected{ExitCode: 12}) // reached GitLab: no variable yet
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o606, 0o660, 0o666} {
		p := file(fmt.Sprintf("m%o", mode), mode)
		tg.fake.ResetRequests()
		r := tg.run(t, "", nil, "create", "--project-id", "42", "--token-file", p)
		r.Assert(t, icmd.Expected{ExitCode: exitUsage, Err: fmt.Sprintf("can be read or written by users other than its owner (mode %04o)", mode)})
		assert.Check(t, is.Len(tg.fake.Requests(), 0), "mode %o: nothing may be sent", mode)
	}
	// The file wins over the environment, so a world-readable file is refused even then.
	r := tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", "42", "--token-file", filepath.Join(dir, "m644"))
	r.Assert(t, icmd.Expected{ExitCode: exitUsage})
	// There is no flag that takes the token itself.
	r = tg.run(t, "", nil, "create", "--project-id", "42", "--token", tg.seed.MaintainerToken)
	r.Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "unknown flag --token"})
}

// TestPlainHTTPOnlyToLoopback: http:// to another host is refused before anything is sent,
// unless --insecure-http says so.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	ip := nonLoopbackIP(t)
	fake := gitlabfake.New()
	seed := fake.Seed()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { fake.Close(); _ = srv.Close() })
	url := "http://" + l.Addr().String()
	fake.SetBaseURL(url)
	tg := &target{url: url, fake: fake, seed: seed, secrets: []string{seed.MaintainerToken}}

	r := tg.run(t, seed.MaintainerToken, nil, "create", "--project-id", "42", "--gitlab-url", url)
	r.Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "uses plain http, which would send the access token unencrypted"})
	assert.Check(t, is.Len(fake.Requests(), 0), "nothing may be sent over plain http")
	r = tg.run(t, seed.MaintainerToken, nil, "create", "--project-id", "42", "--gitlab-url", url, "--insecure-http")
	r.Assert(t, icmd.Success)
	assert.Check(t, is.Len(fake.Runners(), 1))
}

// nonLoopbackIP is an address of this machine that is not loopback, or the test is skipped.
func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address to serve plain http on")
	return ""
}

// TestCAFile: TLS is verified; a self-signed GitLab works with its CA in --ca-file (or
// CI_SERVER_TLS_CA_FILE) and fails without it, saying so.
func TestCAFile(t *testing.T) {
	fake := gitlabfake.New()
	seed := fake.Seed()
	ts := httptest.NewTLSServer(fake)
	t.Cleanup(func() { fake.Close(); ts.Close() })
	fake.SetBaseURL(ts.URL)
	tg := &target{url: ts.URL, fake: fake, seed: seed, secrets: []string{seed.MaintainerToken}}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	assert.NilError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644))
	tok := seed.MaintainerToken

	r := tg.run(t, tok, nil, "create", "--project-id", "42")
	r.Assert(t, icmd.Expected{ExitCode: 1, Err: "certificate"})
	assert.Check(t, strings.HasPrefix(lastLine(r.Stderr()), "runner-bootstrap: cannot "), lastLine(r.Stderr()))
	assert.Check(t, is.Len(fake.Runners(), 0))

	tg.run(t, tok, nil, "create", "--project-id", "42", "--ca-file", ca).Assert(t, icmd.Success)
	tg.run(t, tok, []string{"CI_SERVER_TLS_CA_FILE=" + ca}, "status", "--project-id", "42").Assert(t, icmd.Success)
	assert.Check(t, is.Len(fake.Runners(), 1))

	notPEM := filepath.Join(t.TempDir(), "not.pem")
	assert.NilError(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644))
	tg.run(t, tok, nil, "status", "--project-id", "42", "--ca-file", notPEM).Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "holds no PEM certificate"})
}
