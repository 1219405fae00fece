package gitlab

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type sentTransport struct{ sent []string }

func (s *sentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.sent = append(s.sent, r.URL.String())
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
}

// TestEveryRequestKeepsToTheBaseURL: the scheme, host and plain-http rules hold for every
// request the client sends, not only for the configured URL, so nothing a server answers can
// make the access token travel elsewhere or in clear.
func TestEveryRequestKeepsToTheBaseURL(t *testing.T) {
	for _, tc := range []struct {
		base, req string
		insecure  bool
		plain     bool // refused for plain http
		ok        bool
	}{
		{base: "https://gitlab.example.com", req: "https://gitlab.example.com/api/v4/user", ok: true},
		{base: "https://gitlab.example.com", req: "https://evil.example.net/api/v4/user"},
		{base: "https://gitlab.example.com", req: "http://gitlab.example.com/api/v4/user"},
		{base: "https://gitlab.example.com", req: "https://gitlab.example.com:8443/api/v4/user"},
		{base: "http://127.0.0.1:8080", req: "http://127.0.0.1:8080/api/v4/user", ok: true},
		{base: "http://gitlab.internal", req: "http://gitlab.internal/api/v4/user", plain: true},
		{base: "http://gitlab.internal", req: "http://gitlab.internal/api/v4/user", insecure: true, ok: true},
	} {
		base, _ := url.Parse(tc.base)
		next := &sentTransport{}
		g := &guardTransport{next: next, base: base, insecure: tc.insecure}
		req, _ := http.NewRequest(http.MethodGet, tc.req, nil)
		_, err := g.RoundTrip(req)
		if tc.ok {
			assert.Check(t, err, "%s via %s", tc.req, tc.base)
			assert.Check(t, is.Len(next.sent, 1))
			continue
		}
		var ob *OffBaseError
		assert.Check(t, errors.As(err, &ob), "%s via %s: %v", tc.req, tc.base, err)
		assert.Check(t, is.Len(next.sent, 0), "%s was sent", tc.req)
		if ob != nil {
			assert.Check(t, is.Equal(ob.PlainHTTP, tc.plain))
			assert.Check(t, permanent(err), "a refused request is never retried")
		}
	}
}
