package pipeline

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// defaultImage is every component's image input default: the released image whose tag is the
// component's own version, which the job variable carries from $[[ component.version ]].
const defaultImage = "registry.gitlab.com/runner-bootstrap/runner-bootstrap:$RUNNER_BOOTSTRAP_COMPONENT_VERSION"

// TestTemplateHeaderConventions checks what the CI/CD Catalog shows and what the pinning needs:
// a one-line spec:description, spec:component with version, and the pinned image default.
func TestTemplateHeaderConventions(t *testing.T) {
	for _, name := range components {
		t.Run(name, func(t *testing.T) {
			c := loadComponent(t, name)
			assert.Check(t, strings.TrimSpace(c.Description) != "", "%s: give the component a spec:description", c.Path)
			assert.Check(t, !strings.Contains(c.Description, "\n"), "%s: spec:description is one paragraph above the inputs table", c.Path)
			assert.Check(t, is.Contains(c.Context, "version"), "%s: spec:component must declare version", c.Path)
			in, ok := c.input("image")
			if assert.Check(t, ok, "%s: no image input", c.Path) {
				assert.Check(t, is.Equal(in.Default, defaultImage), "%s: image default", c.Path)
			}
		})
	}
}

// TestTemplateImagePinning renders each job as GitLab would and expands its image the way the
// runner does (job variables, unknown ones empty): released, the image is the version's;
// the image input replaces it whole; included by branch or SHA there is no tag, which is
// why such an include must set image (TestProjectPipelineIncludes checks the project's own).
func TestTemplateImagePinning(t *testing.T) {
	const override = "registry.example.com/mirror/runner-bootstrap:9.9.9@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, name := range components {
		t.Run(name, func(t *testing.T) {
			c := loadComponent(t, name)

			body, _ := c.renderAt(t, nil, "1.2.3")
			assert.Check(t, is.Equal(jobImage(t, body), "registry.gitlab.com/runner-bootstrap/runner-bootstrap:1.2.3"))

			body, _ = c.renderAt(t, map[string]any{"image": override}, "1.2.3")
			assert.Check(t, is.Equal(jobImage(t, body), override), "the image input wins over the version")

			body, _ = c.renderAt(t, nil, "")
			assert.Check(t, is.Equal(jobImage(t, body), "registry.gitlab.com/runner-bootstrap/runner-bootstrap:"),
				"included by SHA the default has no tag: the README tells users to set image")
		})
	}
}

// jobImage is the rendered job's image after the runner's variable expansion.
func jobImage(t *testing.T, body *yaml.Node) string {
	t.Helper()
	job := body.Content[0].Content[1]
	image := mappingValue(job, "image")
	assert.Assert(t, image != nil && image.Kind == yaml.ScalarNode, "the job's image must be a string")
	vars := map[string]string{}
	if v := mappingValue(job, "variables"); v != nil {
		assert.NilError(t, v.Decode(&vars))
	}
	return os.Expand(image.Value, func(k string) string { return vars[k] })
}
