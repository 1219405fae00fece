package output

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestPrintJSONAndText(t *testing.T) {
	var b bytes.Buffer
	v := map[string]any{"action": "created", "runner_id": 7}
	assert.NilError(t, Printer{W: &b, Format: JSON}.Print(v, nil))
	assert.Equal(t, b.String(), "{\n  \"action\": \"created\",\n  \"runner_id\": 7\n}\n")
	b.Reset()
	assert.NilError(t, Printer{W: &b, Format: Text}.Print(v, func(w io.Writer) { io.WriteString(w, "created 7\n") }))
	assert.Equal(t, b.String(), "created 7\n")
}

func TestWriteDotenv(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.env")
	assert.NilError(t, WriteDotenv(p, map[string]string{"B": "2", "A": "1"}))
	got, _ := os.ReadFile(p)
	assert.Equal(t, string(got), "A=1\nB=2\n")
	assert.ErrorContains(t, WriteDotenv(p, map[string]string{"A": "x\ny"}), "spans lines")
	assert.ErrorContains(t, WriteDotenv(p, map[string]string{"a-b": "x"}), "invalid key")
	assert.ErrorContains(t, WriteDotenv(filepath.Join(p, "nodir", "x"), map[string]string{"A": "1"}), "cannot write --dotenv")
}

// TestFactsMirrorJSON: every JSON field becomes one dotenv line with the same value.
func TestFactsMirrorJSON(t *testing.T) {
	type gl struct {
		Version    string `json:"version"`
		Enterprise bool   `json:"enterprise"`
	}
	v := struct {
		Action  string   `json:"action"`
		ID      int64    `json:"runner_id"`
		Scope   string   `json:"environment_scope"`
		Expires *string  `json:"token_expires_at"`
		Orphans []int64  `json:"orphans_deleted"`
		Notes   []string `json:"notes"`
		GitLab  gl       `json:"gitlab"`
		Omitted int      `json:"omitted,omitempty"`
	}{"created", 1000, "review/*", nil, []int64{7, 8}, []string{"one, two", "three\nfour"}, gl{"17.3.2", true}, 0}
	got, err := Facts("RB", v)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, map[string]string{
		"RB_ACTION": "created", "RB_RUNNER_ID": "1000", "RB_ENVIRONMENT_SCOPE": "review/*", "RB_TOKEN_EXPIRES_AT": "",
		"RB_ORPHANS_DELETED": "7,8", "RB_NOTES": "one, two; three four", "RB_GITLAB_VERSION": "17.3.2", "RB_GITLAB_ENTERPRISE": "true",
	}))
}
