package gitlab

import (
	"net/http"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestRateLimitReadsTheHeaderOfAnyAnswer(t *testing.T) {
	for _, tc := range []struct {
		status int
		header string
		want   int
	}{
		{http.StatusOK, "2000", 2000},
		{http.StatusForbidden, "600", 600},
		{http.StatusOK, "", 0},
	} {
		c := server(t, func(w http.ResponseWriter, r *http.Request) {
			assert.Check(t, is.Equal(r.Method+" "+r.URL.Path, "GET /api/v4/user"))
			if tc.header != "" {
				w.Header().Set("RateLimit-Limit", tc.header)
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(`{}`))
		})
		got, err := c.RateLimit(t.Context())
		assert.Check(t, err)
		assert.Check(t, is.Equal(got, tc.want))
	}
}
