package safefile

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// TestWriteReplacesALinkInsteadOfFollowingIt: a link placed at the target by someone else
// (pointing at a file they want overwritten, or want to read) is replaced; its target keeps
// its content.
func TestWriteReplacesALinkInsteadOfFollowingIt(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	assert.NilError(t, os.WriteFile(victim, []byte("keep"), 0o644))
	out := filepath.Join(dir, "out")
	assert.NilError(t, os.Symlink(victim, out))

	assert.NilError(t, Write("--file", out, []byte("secret"), Secret))
	got, _ := os.ReadFile(victim)
	assert.Check(t, is.Equal(string(got), "keep"), "the link was followed")
	fi, err := os.Lstat(out)
	assert.NilError(t, err)
	assert.Check(t, fi.Mode().IsRegular())
	assert.Check(t, is.Equal(fi.Mode().Perm(), Secret))
	entries, _ := os.ReadDir(dir)
	assert.Check(t, is.Len(entries, 2), "a temporary file was left behind")
}

func TestWriteModeIgnoresUmaskAndOldMode(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	assert.NilError(t, os.WriteFile(out, []byte("old"), 0o666))
	assert.NilError(t, Write("--dotenv", out, []byte("A=1\n"), Public))
	fi, _ := os.Stat(out)
	assert.Check(t, is.Equal(fi.Mode().Perm(), Public))
	assert.NilError(t, Write("--file", out, []byte("t"), Secret))
	fi, _ = os.Stat(out)
	assert.Check(t, is.Equal(fi.Mode().Perm(), Secret))
}

// TestCheckRefusesWhatWriteCouldNot: the checks commands run before they change GitLab.
func TestCheckRefusesWhatWriteCouldNot(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{dir, filepath.Join(dir, "missing", "x"), "/dev/null"} {
		err := Check("--dotenv", p)
		assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage), "%s: %v", p, err)
		assert.Check(t, is.ErrorContains(err, "--dotenv "+p))
	}
	assert.NilError(t, Check("--dotenv", filepath.Join(dir, "new.env")))
	entries, _ := os.ReadDir(dir)
	assert.Check(t, is.Len(entries, 0), "the probe file was left behind")
}
