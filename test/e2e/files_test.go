package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// TestOutputFilesNeverFollowALink: render --file, --dotenv and migrate --write replace a link
// someone placed at the path with a new file (0600 where it can hold a secret) instead of
// writing through it into the file it points to.
func TestOutputFilesNeverFollowALink(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	assert.NilError(t, os.WriteFile(victim, []byte("precious\n"), 0o644))
	link := func(name string) string {
		p := filepath.Join(dir, name)
		assert.NilError(t, os.Symlink(victim, p))
		return p
	}
	checkReplaced := func(p string, mode os.FileMode) {
		t.Helper()
		fi, err := os.Lstat(p)
		assert.NilError(t, err)
		assert.Check(t, fi.Mode().IsRegular(), "%s is still a link", p)
		assert.Check(t, is.Equal(fi.Mode().Perm(), mode), p)
		b, _ := os.ReadFile(victim)
		assert.Check(t, is.Equal(string(b), "precious\n"), "written through the link at %s", p)
	}

	dotenv := link("create.env")
	tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", "42", "--dotenv", dotenv).Assert(t, icmd.Success)
	checkReplaced(dotenv, 0o644)

	file := link("values.yaml")
	env := []string{"RUNNER_TOKEN=" + mustVar(t, tg).Value}
	r := icmd.RunCmd(icmd.Command(binary, "render", "--format", "helm-values", "--file", file, "--gitlab-url", tg.url), icmd.WithEnv(env...))
	r.Assert(t, icmd.Success)
	checkReplaced(file, 0o600)

	values := filepath.Join(dir, "legacy.yaml")
	assert.NilError(t, os.WriteFile(values, []byte("gitlabUrl: https://gitlab.example.com/\nrunnerRegistrationToken: \"\"\nconcurrent: 4\n"), 0o600))
	write := link("migrated.yaml")
	tg.run(t, tg.seed.MaintainerToken, nil, "migrate", "--helm-values", values, "--project-id", "42", "--variable-key", "MIGRATED", "--write", write).Assert(t, icmd.Success)
	checkReplaced(write, 0o600)
}

// TestBadOutputPathChangesNothing: a --dotenv or --write path that cannot be written is bad
// input found before anything is created (exit 2 means nothing changed).
func TestBadOutputPathChangesNothing(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	missing := filepath.Join(t.TempDir(), "no-such-dir", "out")
	for _, args := range [][]string{
		{"create", "--project-id", "42", "--dotenv", missing},
		{"rotate", "--project-id", "42", "--dotenv", missing},
		{"migrate", "--helm-values", "/dev/null", "--project-id", "42", "--write", missing},
		{"create", "--project-id", "42", "--dotenv", t.TempDir()},
	} {
		res := tg.run(t, tg.seed.MaintainerToken, nil, args...)
		res.Assert(t, icmd.Expected{ExitCode: exitUsage})
		assert.Check(t, is.Equal(len(tg.fake.Runners()), 0), "%v created a runner", args)
		assert.Check(t, is.Equal(tg.writes(), 0))
	}
}
