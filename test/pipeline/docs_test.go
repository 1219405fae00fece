package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"
)

const docsPath = repoRoot + "/README.md"

// TestComponentDocs keeps the inputs tables of the README's "CI/CD components" section generated from the
// templates. After changing an input, regenerate them with
//
//	go test ./test/pipeline -run TestComponentDocs -update
func TestComponentDocs(t *testing.T) {
	raw, err := os.ReadFile(docsPath)
	assert.NilError(t, err)
	doc := string(raw)
	want := doc
	for _, name := range components {
		want, err = replaceBetweenMarkers(want, "inputs:"+name, inputsTable(loadComponent(t, name)))
		assert.NilError(t, err, "%s", docsPath)
	}
	if golden.FlagUpdate() {
		if want != doc {
			assert.NilError(t, os.WriteFile(docsPath, []byte(want), 0o644))
			t.Logf("updated %s", filepath.Clean(docsPath))
		}
		return
	}
	assert.Equal(t, doc, want, "%s is out of date with templates/: run go test ./test/pipeline -run TestComponentDocs -update", filepath.Clean(docsPath))
}

// replaceBetweenMarkers puts content between <!-- marker --> and <!-- /marker -->.
func replaceBetweenMarkers(doc, marker, content string) (string, error) {
	open, closing := "<!-- "+marker+" -->", "<!-- /"+marker+" -->"
	i := strings.Index(doc, open)
	j := strings.Index(doc, closing)
	if i < 0 || j < i {
		return "", fmt.Errorf("markers %s … %s not found in this order", open, closing)
	}
	// Blank lines around the table: a table must not run into the closing comment.
	return doc[:i+len(open)] + "\n\n" + content + "\n" + doc[j:], nil
}

// inputsTable renders a component's inputs as a Markdown table, in the header's order.
func inputsTable(c component) string {
	var b strings.Builder
	b.WriteString("| Input | Type | Default | Description |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, in := range c.Inputs {
		desc := strings.Join(strings.Fields(in.Description), " ")
		if len(in.Options) > 0 {
			opts := make([]string, len(in.Options))
			for i, o := range in.Options {
				opts[i] = "`" + fmt.Sprint(o) + "`"
			}
			desc += " One of " + strings.Join(opts, ", ") + "."
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", in.Name, in.typeName(), defaultCell(in), cell(desc))
	}
	return b.String()
}

// defaultCell shows a default as it would be written in YAML.
func defaultCell(in input) string {
	if !in.HasDefault {
		return "*required*"
	}
	if s, ok := in.Default.(string); ok && s == "" {
		return "*empty*"
	}
	text := fmt.Sprint(in.Default)
	if in.DefaultNode != nil && in.DefaultNode.Kind != yaml.ScalarNode {
		n := *in.DefaultNode
		n.Style = yaml.FlowStyle
		if out, err := yaml.Marshal(&n); err == nil {
			text = strings.TrimSpace(string(out))
		}
	}
	return "`" + cell(text) + "`"
}

// cell escapes what would end a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
