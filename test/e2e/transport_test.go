package e2e

import (
	"net"
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
