package cli

import (
	"testing"

	"gotest.tools/v3/assert"
)

// TestHardenMakesTheProcessNonDumpable: after Harden, no core dump (or same-user ptrace) can
// expose the tokens the process holds.
func TestHardenMakesTheProcessNonDumpable(t *testing.T) {
	assert.NilError(t, Harden())
	d, err := dumpable()
	assert.NilError(t, err)
	assert.Check(t, !d, "the process is still dumpable")
}
