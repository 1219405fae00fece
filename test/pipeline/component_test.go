package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"gotest.tools/v3/assert"
)

// repoRoot is the module root, seen from this package's directory (go test's cwd).
const repoRoot = "../.."

// components are the CI/CD components, in the order the docs present them.
var components = []string{"create-runner", "rotate-token", "delete-runner", "apply-fleet", "audit"}

// input is one entry of a component's spec:inputs.
type input struct {
	Name        string
	Type        string // as written; "" means string
	Description string
	HasDefault  bool
	Default     any
	DefaultNode *yaml.Node
	Options     []any
	Regex       string
}

// component is a template split into its header and its body.
type component struct {
	Name        string
	Path        string
	Header      *yaml.Node // the spec: document
	Body        string     // the text after ---
	Inputs      []input    // in the order of the header
	Description string     // spec:description
	Context     []string   // spec:component: the component context fields the body may use
}

func (c component) input(name string) (input, bool) {
	for _, in := range c.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return input{}, false
}

// loadComponent reads templates/<name>.yml.
func loadComponent(t *testing.T, name string) component {
	t.Helper()
	return loadComponentAt(t, name, filepath.Join(repoRoot, "templates", name+".yml"))
}

// loadComponentAt reads a file with a spec: header and a job, such as compat/<name>.yml.
func loadComponentAt(t *testing.T, name, path string) component {
	t.Helper()
	raw, err := os.ReadFile(path)
	assert.NilError(t, err)
	header, body, ok := splitDocuments(string(raw))
	assert.Assert(t, ok, "%s: expected a spec: header, a line ---, then the job", path)

	var doc yaml.Node
	assert.NilError(t, yaml.Unmarshal([]byte(header), &doc), "%s: header", path)
	c := component{Name: name, Path: path, Header: &doc, Body: body}

	spec := mappingValue(doc.Content[0], "spec")
	if d := mappingValue(spec, "description"); d != nil {
		c.Description = d.Value
	}
	if ctx := mappingValue(spec, "component"); ctx != nil {
		assert.NilError(t, ctx.Decode(&c.Context), "%s: spec:component", path)
	}
	inputs := mappingValue(spec, "inputs")
	assert.Assert(t, inputs != nil && inputs.Kind == yaml.MappingNode, "%s: no spec:inputs mapping", path)
	for i := 0; i+1 < len(inputs.Content); i += 2 {
		c.Inputs = append(c.Inputs, parseInput(t, path, inputs.Content[i].Value, inputs.Content[i+1]))
	}
	return c
}

// splitDocuments splits a component file at its first line that is exactly "---".
func splitDocuments(s string) (header, body string, ok bool) {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.TrimRight(l, "\r\n") == "---" {
			return strings.Join(lines[:i], ""), strings.Join(lines[i+1:], ""), true
		}
	}
	return "", "", false
}

func parseInput(t *testing.T, path, name string, n *yaml.Node) input {
	t.Helper()
	in := input{Name: name}
	if n.Kind != yaml.MappingNode {
		return in
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		switch k {
		case "type":
			in.Type = v.Value
		case "description":
			in.Description = v.Value
		case "regex":
			in.Regex = v.Value
		case "default":
			in.HasDefault, in.DefaultNode = true, v
			assert.NilError(t, v.Decode(&in.Default), "%s: %s: default", path, name)
		case "options":
			assert.NilError(t, v.Decode(&in.Options), "%s: %s: options", path, name)
		}
	}
	return in
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// typeName is the input's effective type: GitLab treats a missing type as string.
func (in input) typeName() string {
	if in.Type == "" {
		return "string"
	}
	return in.Type
}

// checkValue reports why v is not acceptable for the input, as GitLab checks inputs:
// the type, then options, then (for strings) the regex, which GitLab runs with RE2 as Go does.
func (in input) checkValue(v any) error {
	switch in.typeName() {
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: %v is not a string", in.Name, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %v is not a boolean", in.Name, v)
		}
	case "number":
		switch v.(type) {
		case int, int64, float64:
		default:
			return fmt.Errorf("%s: %v is not a number", in.Name, v)
		}
	case "array":
		if _, ok := v.([]any); !ok {
			return fmt.Errorf("%s: %v is not an array", in.Name, v)
		}
	default:
		return fmt.Errorf("%s: unknown type %q", in.Name, in.Type)
	}
	if len(in.Options) > 0 {
		found := false
		for _, o := range in.Options {
			if fmt.Sprint(o) == fmt.Sprint(v) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s: %v is not one of the options %v", in.Name, v, in.Options)
		}
	}
	if in.Regex != "" {
		re, err := regexp.Compile(in.Regex)
		if err != nil {
			return fmt.Errorf("%s: regex %q: %w", in.Name, in.Regex, err)
		}
		if !re.MatchString(fmt.Sprint(v)) {
			return fmt.Errorf("%s: %q does not match %s", in.Name, fmt.Sprint(v), in.Regex)
		}
	}
	return nil
}

// defaults are the component's default input values.
func (c component) defaults() map[string]any {
	out := map[string]any{}
	for _, in := range c.Inputs {
		if in.HasDefault {
			out[in.Name] = in.Default
		}
	}
	return out
}

var interpolationRE = regexp.MustCompile(`\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]`)

// releasedVersion is the component version render uses: GitLab sets $[[ component.version ]]
// to it when a component is included at a released version.
const releasedVersion = "1.2.3"

// render interpolates the body as included at releasedVersion; see renderAt.
func (c component) render(t *testing.T, values map[string]any) (*yaml.Node, map[string]bool) {
	t.Helper()
	return c.renderAt(t, values, releasedVersion)
}

var componentRE = regexp.MustCompile(`\$\[\[\s*component\.([A-Za-z0-9_-]+)\s*\]\]`)

// renderAt interpolates the body with the given inputs (falling back to defaults) the way
// GitLab does: on the parsed YAML, a scalar that is exactly one $[[ inputs.x ]] takes the
// input's typed value (so rules: gets an array), any other occurrence is replaced by text.
// $[[ component.version ]] becomes version, which is empty when the component is included
// by branch or SHA; a component field the header does not declare in spec:component is an
// error, as in GitLab. It returns the rendered YAML tree and the names of the inputs the body uses.
func (c component) renderAt(t *testing.T, values map[string]any, version string) (*yaml.Node, map[string]bool) {
	t.Helper()
	all := c.defaults()
	maps.Copy(all, values)
	var doc yaml.Node
	assert.NilError(t, yaml.Unmarshal([]byte(c.Body), &doc), "%s: body", c.Path)
	used := map[string]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && componentRE.MatchString(n.Value) {
			n.Value = componentRE.ReplaceAllStringFunc(n.Value, func(s string) string {
				field := componentRE.FindStringSubmatch(s)[1]
				assert.Assert(t, slices.Contains(c.Context, field), "%s: $[[ component.%s ]] needs %s in spec:component", c.Path, field, field)
				assert.Assert(t, field == "version", "%s: render knows only component.version", c.Path)
				return version
			})
			n.Tag, n.Style = "!!str", 0
		}
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "$[[") {
			if m := interpolationRE.FindStringSubmatch(n.Value); m != nil && m[0] == strings.TrimSpace(n.Value) {
				used[m[1]] = true
				v, ok := all[m[1]]
				assert.Assert(t, ok, "%s: $[[ inputs.%s ]] is not a declared input (or has no value)", c.Path, m[1])
				var typed yaml.Node
				assert.NilError(t, typed.Encode(v))
				*n = typed
				return
			}
			n.Value = interpolationRE.ReplaceAllStringFunc(n.Value, func(s string) string {
				name := interpolationRE.FindStringSubmatch(s)[1]
				used[name] = true
				v, ok := all[name]
				assert.Assert(t, ok, "%s: $[[ inputs.%s ]] is not a declared input (or has no value)", c.Path, name)
				return textValue(v)
			})
			n.Tag, n.Style = "!!str", 0
			return
		}
		for _, child := range n.Content {
			walk(child)
		}
	}
	walk(&doc)
	return &doc, used
}

// textValue is how an input reads inside a longer string.
func textValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case []any, map[string]any:
		b, _ := json.Marshal(x)
		return string(b)
	default:
		return fmt.Sprint(x)
	}
}

// toJSONValue turns a YAML tree into the generic JSON value a JSON schema validates.
func toJSONValue(t *testing.T, n *yaml.Node) any {
	t.Helper()
	var v any
	assert.NilError(t, n.Decode(&v))
	b, err := json.Marshal(v)
	assert.NilError(t, err)
	var out any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	assert.NilError(t, dec.Decode(&out))
	return out
}
