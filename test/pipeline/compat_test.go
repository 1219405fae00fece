package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"
	"gotest.tools/v3/icmd"
)

// compat/<name>.yml are the components' jobs for a GitLab older than 18.10, which refuses the
// components' headers ("header:spec config contains unknown keys: description"). Users include
// them with include:project (from their mirror) at a release tag. They are generated from
// templates/ by compatFile, never edited: TestCompatFiles fails when a template changed without
//
//	go test ./test/pipeline -run TestCompatFiles -update
//
// They are not under templates/, because the CI/CD Catalog takes every file there as a component.
const compatDir = repoRoot + "/compat"

// compatFloor is the oldest GitLab the compat files claim (README, release notes, CHANGELOG).
// It is the newest entry of compatKeyVersions the files use: type: array (the rules inputs).
const compatFloor = "16.11"

// compatKeyVersions is the GitLab version each header key of a compat file needs, from the
// history notes of GitLab's docs (doc/ci/yaml/_index.md "spec:inputs:*", doc/ci/yaml/inputs.md)
// and, for array, MR !151819 ("Adding array support in 16.11", after issue #457207's
// "input type unknown value: array" on 16.10). A key not listed fails TestCompatHeaderFloor
// until someone adds it with the version it needs.
var compatKeyVersions = map[string]string{
	"spec.inputs":       "15.11", // with include:inputs (include:with before 16.0) on local, project, remote, template
	"input.required":    "15.11", // an input without default is mandatory
	"input.default":     "15.11",
	"input.description": "16.5", // issue #415637
	"input.regex":       "16.5", // issue #410836; RE2, strings only
	"input.options":     "16.6", // issue #393401
	"input.type":        "16.6", // string, number, boolean (GA of inputs in 16.6)
	"type.string":       "16.6",
	"type.number":       "16.6",
	"type.boolean":      "16.6",
	"type.array":        "16.11",
	// Left out on purpose: spec:component (18.7: the version comes from the version input),
	// spec:description (18.10), spec:include (18.x), spec:inputs:<name>:rules (18.7).
}

// compatImageDescription replaces the image input's description, which speaks of the
// component version the include resolves to.
const compatImageDescription = "Job image with the runner-bootstrap binary. The default is the image released with `version` (the job sets `RUNNER_BOOTSTRAP_COMPONENT_VERSION` to it); a value replaces it whole, e.g. your own registry's copy."

// compatVersionInput stands in for $[[ component.version ]]: an include:project file has no
// component context, and GitLab offers no variable with the ref a file was included at. It is
// required, so an include that forgets it fails at pipeline creation with GitLab's own
// sentence instead of a job that cannot pull "runner-bootstrap:".
const compatVersionInput = `    version:
      type: string
      regex: '^[0-9]+\.[0-9]+\.[0-9]+$'
      description: The release you include, the same as the include's ` + "`ref`" + ` (e.g. ` + "`1.2.3`" + `); the default image is the one released with it. The component takes it from its include instead.
`

// compatFile generates compat/<name>.yml from templates/<name>.yml: the same text without
// spec:description and spec:component (and the comments right above them), with a required
// version input after image, and $[[ component.version ]] replaced by $[[ inputs.version ]].
func compatFile(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(repoRoot, "templates", name+".yml")
	raw, err := os.ReadFile(path)
	assert.NilError(t, err)
	header, body, ok := splitDocuments(string(raw))
	assert.Assert(t, ok, "%s: expected a spec: header, a line ---, then the job", path)

	lines := strings.SplitAfter(header, "\n")
	var out, comments []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case indentOf(l) == 2 && strings.HasPrefix(strings.TrimSpace(l), "#"):
			comments = append(comments, l) // kept only if the key below them is kept
			continue
		case indentOf(l) == 2 && (isKey(l, "description") || isKey(l, "component")):
			comments = nil
			for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" && indentOf(lines[i+1]) > 2 {
				i++ // a multi-line value
			}
			continue
		}
		out = append(out, comments...)
		comments = nil
		out = append(out, l)
	}
	out = append(out, comments...)

	// The image input: its own description, then the version input after its block.
	start := slices.IndexFunc(out, func(l string) bool { return indentOf(l) == 4 && isKey(l, "image") })
	assert.Assert(t, start >= 0, "%s: no image input", path)
	end := start + 1
	for end < len(out) && (strings.TrimSpace(out[end]) == "" || indentOf(out[end]) > 4) {
		if indentOf(out[end]) == 6 && isKey(out[end], "description") {
			out[end] = "      description: " + compatImageDescription + "\n"
		}
		end++
	}
	out = slices.Insert(out, end, compatVersionInput)

	body = componentRE.ReplaceAllStringFunc(body, func(s string) string {
		field := componentRE.FindStringSubmatch(s)[1]
		assert.Assert(t, field == "version", "%s: compat knows only component.version, not %s", path, field)
		return "$[[ inputs.version ]]"
	})

	banner := fmt.Sprintf(`# GENERATED from templates/%[1]s.yml; do not edit. After changing the template run
#   go test ./test/pipeline -run TestCompatFiles -update
# The %[1]s job for GitLab %[2]s to 18.9, which refuse the component's header: the same job
# and inputs, plus the version input, without spec:description (GitLab 18.10) and
# spec:component (18.7). Include it from the project (your mirror) at a release tag:
#   include:
#     - project: tools/runner-bootstrap
#       ref: 1.2.3
#       file: /compat/%[1]s.yml
#       inputs:
#         version: 1.2.3
`, name, compatFloor)
	return banner + strings.Join(out, "") + "---\n" + body
}

func indentOf(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

func isKey(l, key string) bool { return strings.HasPrefix(strings.TrimSpace(l), key+":") }

// TestCompatFiles keeps compat/ generated from templates/: one file per component, nothing else.
func TestCompatFiles(t *testing.T) {
	for _, name := range components {
		path := filepath.Join(compatDir, name+".yml")
		want := compatFile(t, name)
		if golden.FlagUpdate() {
			assert.NilError(t, os.MkdirAll(compatDir, 0o755))
			assert.NilError(t, os.WriteFile(path, []byte(want), 0o644))
			continue
		}
		got, err := os.ReadFile(path)
		assert.NilError(t, err, "regenerate: go test ./test/pipeline -run TestCompatFiles -update")
		assert.Equal(t, string(got), want, "%s is out of date with templates/%s.yml: run go test ./test/pipeline -run TestCompatFiles -update", filepath.Clean(path), name)
	}
	entries, err := os.ReadDir(compatDir)
	assert.NilError(t, err)
	for _, e := range entries {
		assert.Check(t, slices.Contains(components, strings.TrimSuffix(e.Name(), ".yml")) && strings.HasSuffix(e.Name(), ".yml"),
			"compat/%s is not generated from a component: remove it", e.Name())
	}
}

// TestCompatHeaderFloor checks that no compat header uses a key newer than compatFloor, that
// the headers are still valid headers, and that the inputs are the component's plus version.
func TestCompatHeaderFloor(t *testing.T) {
	_, schema := loadSchemas(t)
	floor := parseMinor(t, compatFloor)
	needs := func(t *testing.T, path, key string) {
		t.Helper()
		v, ok := compatKeyVersions[key]
		if !assert.Check(t, ok, "%s uses %s: add it to compatKeyVersions with the GitLab version it needs", path, key) {
			return
		}
		assert.Check(t, !newer(parseMinor(t, v), floor), "%s uses %s, which needs GitLab %s: newer than the compat floor %s", path, key, v, compatFloor)
	}
	for _, name := range components {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(compatDir, name+".yml")
			c := loadComponentAt(t, name, path)
			assert.NilError(t, schema.Validate(toJSONValue(t, c.Header)))
			spec := mappingValue(c.Header.Content[0], "spec")
			for i := 0; i+1 < len(spec.Content); i += 2 {
				needs(t, path, "spec."+spec.Content[i].Value)
			}
			for _, in := range mappingValue(spec, "inputs").Content {
				if in.Kind != yaml.MappingNode {
					continue
				}
				if mappingValue(in, "default") == nil {
					needs(t, path, "input.required")
				}
				for i := 0; i+1 < len(in.Content); i += 2 {
					needs(t, path, "input."+in.Content[i].Value)
					if in.Content[i].Value == "type" {
						needs(t, path, "type."+in.Content[i+1].Value)
					}
				}
			}
			assert.Check(t, !componentRE.MatchString(c.Body), "%s: $[[ component.* ]] is refused outside a component", path)

			comp := loadComponent(t, name)
			names := func(c component) (out []string) {
				for _, in := range c.Inputs {
					out = append(out, in.Name)
				}
				return out
			}
			want := names(comp)
			want = slices.Insert(want, slices.Index(want, "image")+1, "version")
			assert.Check(t, is.DeepEqual(names(c), want), "%s: the component's inputs plus version", path)
			for _, in := range comp.Inputs {
				got, _ := c.input(in.Name)
				assert.Check(t, is.DeepEqual(got.Default, in.Default), "%s: default of %s", path, in.Name)
			}
		})
	}
}

// parseMinor reads a GitLab "major.minor".
func parseMinor(t *testing.T, v string) [2]int {
	t.Helper()
	major, minor, ok := strings.Cut(v, ".")
	a, err1 := strconv.Atoi(major)
	b, err2 := strconv.Atoi(minor)
	assert.Assert(t, ok && err1 == nil && err2 == nil, "GitLab version %q is not major.minor", v)
	return [2]int{a, b}
}

func newer(a, b [2]int) bool { return a[0] > b[0] || (a[0] == b[0] && a[1] > b[1]) }

// TestCompatSameJob includes every component (at the working tree's SHA) and its compat file
// (include:local with inputs, as gitlab-ci-local runs offline; include:project takes the same
// inputs) in one pipeline, with default and with all-overridden inputs, and compares the jobs
// gitlab-ci-local expands: everything but the version variable must be the same.
func TestCompatSameJob(t *testing.T) {
	requireTools(t)
	for _, mode := range []string{"defaults", "all-overridden"} {
		t.Run(mode, func(t *testing.T) {
			var includes []map[string]any
			for _, name := range components {
				c := loadComponent(t, name)
				inputs := map[string]any{}
				if mode == "all-overridden" {
					for _, in := range c.Inputs {
						inputs[in.Name] = overrides[in.Name]
					}
				}
				withAs := func(as string) map[string]any {
					out := map[string]any{"as": as}
					for k, v := range inputs {
						if k != "as" {
							out[k] = v
						}
					}
					return out
				}
				compatInputs := withAs("compat-" + name)
				compatInputs["version"] = releasedVersion
				includes = append(includes,
					map[string]any{"component": "$CI_SERVER_FQDN/$CI_PROJECT_PATH/" + name + "@$CI_COMMIT_SHA", "inputs": withAs("component-" + name)},
					map[string]any{"local": "/compat/" + name + ".yml", "inputs": compatInputs},
				)
			}
			ci, err := yaml.Marshal(map[string]any{"stages": []string{"test", "deploy", "infra"}, "include": includes})
			assert.NilError(t, err)
			p := newProject(t, string(ci))
			res := p.runLocal(t, "--preview")
			res.Assert(t, icmd.Success)
			var jobs map[string]any
			assert.NilError(t, yaml.Unmarshal([]byte(res.Stdout()), &jobs), "--preview:\n%s", res.Stdout())
			for _, name := range components {
				comp, okC := jobs["component-"+name].(map[string]any)
				compat, okX := jobs["compat-"+name].(map[string]any)
				if !assert.Check(t, okC && okX, "%s: both jobs in the pipeline:\n%s", name, res.Stdout()) {
					continue
				}
				vars, _ := compat["variables"].(map[string]any)
				assert.Check(t, is.Equal(vars["RUNNER_BOOTSTRAP_COMPONENT_VERSION"], releasedVersion), "%s: the version input reaches the job", name)
				for _, job := range []map[string]any{comp, compat} {
					if v, ok := job["variables"].(map[string]any); ok {
						delete(v, "RUNNER_BOOTSTRAP_COMPONENT_VERSION")
					}
				}
				for _, key := range []string{"script", "variables", "rules", "resource_group", "image"} {
					if key != "resource_group" || !readOnly[name] {
						assert.Check(t, comp[key] != nil, "%s: the component's job has %s", name, key)
					}
				}
				assert.Check(t, is.DeepEqual(compat, comp), "%s: the compat job differs from the component's", name)
			}
		})
	}
}

var compatSnippetRE = regexp.MustCompile("(?s)<!-- compat-include -->\n```yaml\n(.*?)```")

// TestCompatReadme keeps the README's "On GitLab older than 18.10" true: its include names a
// compat file that exists, passes the ref as version and only inputs that file declares, and
// the floor it states is compatFloor.
func TestCompatReadme(t *testing.T) {
	raw, err := os.ReadFile(docsPath)
	assert.NilError(t, err)
	m := compatSnippetRE.FindSubmatch(raw)
	assert.Assert(t, m != nil, "%s: no <!-- compat-include --> yaml block", docsPath)
	var doc struct {
		Include []struct {
			Project, Ref, File string
			Inputs             map[string]any
		}
	}
	assert.NilError(t, yaml.Unmarshal(m[1], &doc))
	assert.Assert(t, is.Len(doc.Include, 1))
	inc := doc.Include[0]
	name, ok := strings.CutPrefix(inc.File, "/compat/")
	assert.Assert(t, ok && inc.Project != "", "include:project of /compat/<name>.yml, got %+v", inc)
	c := loadComponentAt(t, strings.TrimSuffix(name, ".yml"), filepath.Join(compatDir, name))
	assert.Check(t, is.Equal(inc.Inputs["version"], inc.Ref), "version is the include's ref")
	for k, v := range inc.Inputs {
		in, ok := c.input(k)
		if assert.Check(t, ok, "README passes %s an unknown input %s", inc.File, k) {
			assert.Check(t, in.checkValue(v))
		}
	}
	assert.Check(t, is.Contains(string(raw), "**GitLab "+compatFloor+" to 18.9**"), "the README states the compat floor")
}

// TestCompatVersionRequired: an include that forgets version, or gives a v-prefixed one, stops
// at pipeline creation with one sentence naming the input (gitlab-ci-local words it as GitLab
// does), rather than running a job whose image has no tag.
func TestCompatVersionRequired(t *testing.T) {
	requireTools(t)
	p := newProject(t, "include:\n  - local: /compat/audit.yml\n")
	res := p.runLocal(t, "--preview")
	assert.Check(t, res.ExitCode != 0, "an include without version must fail")
	assert.Check(t, is.Contains(res.Combined(), "`version` input: required value has not been provided"), res.Combined())
	assert.Check(t, !strings.Contains(res.Stdout(), "runner-bootstrap audit"), "no job without a version:\n%s", res.Stdout())

	p.setCI(t, "include:\n  - local: /compat/audit.yml\n    inputs:\n      version: v1.2.3\n")
	res = p.runLocal(t, "--preview")
	assert.Check(t, res.ExitCode != 0, "a v-prefixed version must fail")
	assert.Check(t, is.Contains(res.Combined(), "`version` input: `v1.2.3` does not match required regex"), res.Combined())
	assert.Check(t, !strings.Contains(res.Stdout(), "runner-bootstrap audit"), "no job with a v-prefixed version:\n%s", res.Stdout())
}
