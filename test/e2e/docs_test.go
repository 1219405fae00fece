package e2e

import (
	"os"
	"regexp"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

var exampleRE = regexp.MustCompile("(?s)<!-- example: ([^ ]+) -->\n```[a-z]*\n(.*?)```")

// TestReadmeExamples: every README example marked with a file is that file, so the documented
// before/after of a migration is what the code really does (the files are golden-tested).
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	assert.NilError(t, err)
	found := exampleRE.FindAllSubmatch(readme, -1)
	assert.Assert(t, len(found) >= 2, "README has no marked examples")
	for _, m := range found {
		want, err := os.ReadFile("../../" + string(m[1]))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(m[2]), string(want)), "README example %s drifted from the file", m[1])
	}
}
