package output

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
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
	assert.ErrorContains(t, WriteDotenv(filepath.Join(p, "nodir", "x"), map[string]string{"A": "1"}), "cannot write the dotenv file")
}
