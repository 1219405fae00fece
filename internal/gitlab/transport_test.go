package gitlab

import (
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// TestTransportFailuresSayWhatFailed: each kind of failure before an answer (TLS with an
// unknown authority, a certificate for another name, a handshake with a plain-http server, a
// name that does not resolve, a reset connection) is one sentence naming the host and the cause.
func TestTransportFailuresSayWhatFailed(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	assert.NilError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600))
	_, port, _ := net.SplitHostPort(tlsSrv.Listener.Addr().String())
	reset := resetServer(t, false)
	garbage := resetServer(t, true)

	cases := []struct {
		name, url, ca string
		want          []string
	}{
		{"unknown authority", tlsSrv.URL, "", []string{"GitLab at " + tlsSrv.Listener.Addr().String() + " presented a TLS certificate signed by an unknown authority; pass --ca-file (in a CI job CI_SERVER_TLS_CA_FILE"}},
		{"certificate for another name", "https://localhost:" + port, ca, []string{"the TLS certificate of localhost:" + port + " is not valid for that name", "set --gitlab-url to a name the certificate covers"}},
		{"handshake with plain http", "https://" + plain.Listener.Addr().String(), "", []string{"the TLS handshake with " + plain.Listener.Addr().String() + " failed"}},
		{"handshake with a server that is not TLS", "https://" + garbage, "", []string{"the TLS handshake with " + garbage + " failed (the server does not speak TLS on that port)"}},
		{"no such host", "https://nonexistent.invalid", "", []string{"the host name nonexistent.invalid does not resolve (DNS: no such host)"}},
		{"reset", "http://" + reset, "", []string{"GitLab at " + reset + " could not be reached (the connection was reset before GitLab answered)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{BaseURL: tc.url, Token: "glpat-test", CAFile: tc.ca, NoRetries: true})
			assert.NilError(t, err)
			_, err = c.ResolveProject(t.Context(), "a/b")
			for _, w := range tc.want {
				assert.Check(t, is.ErrorContains(err, w))
			}
			assert.Check(t, is.Equal(fail.Code(err), fail.CodeFailure))
			assert.Check(t, !strings.Contains(err.Error(), "tls:") && !strings.Contains(err.Error(), "x509:") && !strings.Contains(err.Error(), "dial tcp"), "no raw Go error: %v", err)
		})
	}
}

// resetServer accepts connections, reads the request and resets the connection (RST); with
// garbage it first writes bytes that are neither TLS nor HTTP.
func resetServer(t *testing.T, garbage bool) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			conn.Read(buf)
			if garbage {
				conn.Write([]byte("\x00\x01\x02\x03\x04\x05\x06\x07garbage\r\n"))
				conn.Close()
				continue
			}
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	}()
	return l.Addr().String()
}
