package pipeline

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestOneResourceGroupPerVariable: create-runner, rotate-token and delete-runner put their job
// in one resource group per variable, the same for the three, and the README's own CLI jobs use
// that group too, so no two of them write one variable at once.
func TestOneResourceGroupPerVariable(t *testing.T) {
	for _, key := range []string{"RUNNER_TOKEN", "DEPLOY_RUNNER_TOKEN"} {
		for _, name := range []string{"create-runner", "rotate-token", "delete-runner"} {
			c := loadComponent(t, name)
			body, _ := c.render(t, map[string]any{"variable_key": key, "project_id": "platform/deploy"})
			rg := mappingValue(body.Content[0].Content[1], "resource_group")
			assert.Assert(t, rg != nil, "%s has no resource_group", name)
			assert.Check(t, is.Equal(rg.Value, "runner-bootstrap/"+key), "%s", name)
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	assert.NilError(t, err)
	for _, m := range regexp.MustCompile(`(?m)^\s*resource_group:\s*(\S+)`).FindAllStringSubmatch(string(readme), -1) {
		assert.Check(t, is.Equal(m[1], "runner-bootstrap/RUNNER_TOKEN"), "a README job writes RUNNER_TOKEN outside its resource group")
	}
}
