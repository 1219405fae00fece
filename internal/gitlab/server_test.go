package gitlab

import (
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]struct {
		v  Version
		ee bool
	}{
		"17.3.2":          {V(17, 3, 2), false},
		"16.11.2-ee":      {V(16, 11, 2), true},
		"18.10.0-rc42-ee": {V(18, 10, 0), true},
		"19.0.0-pre":      {V(19, 0, 0), false},
		"v16.5":           {V(16, 5, 0), false},
	} {
		v, ee, err := ParseVersion(in)
		assert.NilError(t, err, in)
		assert.Check(t, is.Equal(v, want.v), in)
		assert.Check(t, is.Equal(ee, want.ee), in)
	}
	for _, bad := range []string{"", "seventeen", "17", "17.3.2 ee"} {
		_, _, err := ParseVersion(bad)
		assert.Check(t, is.ErrorContains(err, "not of the form"), bad)
	}
	assert.Check(t, V(16, 9, 0).Less(V(16, 10, 0)))
	assert.Check(t, V(17, 0, 0).AtLeast(V(16, 11, 9)))
}

func TestServerHas(t *testing.T) {
	ce165 := Server{Version: V(16, 5, 3)}
	assert.Check(t, ce165.Has(CapVariableDescription))
	assert.Check(t, !ce165.Has(CapInstanceVariableDescription))
	assert.Check(t, !ce165.Has(CapMaskedAndHidden))
	assert.Check(t, !ce165.Has(CapRunnerManagers))
	ee1810 := Server{Version: V(18, 10, 0), Enterprise: true}
	assert.Check(t, ee1810.Has(CapTokenExpiryAtCreate))
	assert.Check(t, !Server{Version: V(18, 10, 0)}.Has(CapTokenExpiryAtCreate), "CE never has it")
	assert.Check(t, !Server{Version: V(18, 9, 4), Enterprise: true}.Has(CapTokenExpiryAtCreate))
	// Unknown version: assumed capable, GitLab's answers are checked instead.
	assert.Check(t, Server{Source: SourceProbe}.Has(CapHiddenEnforced))
	assert.Check(t, is.Equal(Requirement(CapTokenExpiryAtCreate), "GitLab 18.10 EE (Premium)"))
	assert.Check(t, is.Equal(Requirement(CapInstanceVariableDescription), "GitLab 16.8"))
	assert.Check(t, is.DeepEqual(*Server{Version: V(17, 3, 2), Enterprise: true}.Info(), Info{Version: "17.3.2", Enterprise: true}))
	assert.Check(t, is.Equal(Server{}.Info().Version, "unknown"))
	// Every row cites the matrix.
	for _, r := range Capabilities() {
		assert.Check(t, strings.HasPrefix(r.MatrixRow, "#"), r.Capability)
		assert.Check(t, r.Older != "" && r.Feature != "", r.Capability)
	}
}

func TestServerDetection(t *testing.T) {
	fake, seed := gitlabfake.NewTest(t, gitlabfake.GitLab("16.11.2-ee", gitlabfake.TierFree))
	c, err := New(Config{BaseURL: seed.URL, Token: seed.MaintainerToken, NoRetries: true})
	assert.NilError(t, err)
	s, err := c.Server(t.Context())
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(s, Server{Version: V(16, 11, 2), Raw: "16.11.2-ee", Enterprise: true, Source: SourceMetadata}))
	// Cached: a second call sends nothing.
	n := len(fake.Requests())
	_, err = c.Server(t.Context())
	assert.NilError(t, err)
	assert.Check(t, is.Len(fake.Requests(), n))

	// A create_runner-only token is refused both: the version is unknown, not an error.
	c2, err := New(Config{BaseURL: seed.URL, Token: seed.CreateRunnerOnlyToken, NoRetries: true})
	assert.NilError(t, err)
	s, err = c2.Server(t.Context())
	assert.NilError(t, err)
	assert.Check(t, !s.Known())
	assert.Check(t, is.Equal(s.Source, SourceProbe))

	// A refused token is an error.
	c3, err := New(Config{BaseURL: seed.URL, Token: seed.ExpiredToken, NoRetries: true})
	assert.NilError(t, err)
	_, err = c3.Server(t.Context())
	assert.Check(t, is.Equal(StatusCode(err), http.StatusUnauthorized))
}

func TestServerDetectionFallsBackToVersion(t *testing.T) {
	var metadata atomic.Int32
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/metadata") {
			metadata.Add(1)
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"404 Not Found"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"version":"16.1.0-ee","revision":"abc"}`))
	})
	s, err := c.Server(t.Context())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(metadata.Load(), int32(1)))
	assert.Check(t, is.DeepEqual(s, Server{Version: V(16, 1, 0), Raw: "16.1.0-ee", Enterprise: true, Source: SourceVersion}))
}

// TestReadmeCompatibilityTable keeps the README's table equal to the capability table.
func TestReadmeCompatibilityTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	assert.NilError(t, err)
	const begin, end = "<!-- compatibility:begin (generated from internal/gitlab/capabilities.go) -->\n", "<!-- compatibility:end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	assert.Assert(t, i >= 0 && j > i, "README.md lacks the compatibility table markers")
	if golden.FlagUpdate() {
		s = s[:i+len(begin)] + CompatibilityTable() + s[j:]
		assert.NilError(t, os.WriteFile("../../README.md", []byte(s), 0o644))
		return
	}
	assert.Equal(t, s[i+len(begin):j], CompatibilityTable(), "README.md's compatibility table differs from capabilities.go: paste CompatibilityTable() between the markers")
}
