package e2e

import (
	"os"
	"path/filepath"
	"strings"
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

// TestMigrateWriteCarriesNoTokenOfAnyKind: tokens pasted elsewhere in the values file (a
// runner token under another key, an access token in an env block) are dropped from the
// written file and named in the output; one that migrate cannot drop by itself (in a comment)
// makes it refuse before anything is created.
func TestMigrateWriteCarriesNoTokenOfAnyKind(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	assert.NilError(t, os.WriteFile(values, []byte(`gitlabUrl: https://gitlab.example.com/
runnerRegistrationToken: ""
concurrent: 4
backupToken: glrt-abcdefghijklmnopqrstu
runners:
  env:
    API_TOKEN: glpat-abcdefghijklmnopqrst
  config: |
    [[runners]]
      executor = "kubernetes"
`), 0o600))
	out := filepath.Join(dir, "migrated.yaml")
	res := tg.run(t, tg.seed.MaintainerToken, nil, "migrate", "--helm-values", values, "--project-id", "42", "--write", out, "-o", "json")
	res.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(res.Stdout(), "backupToken holds a runner authentication token in plain text: the migrated file drops it"), "names what was dropped")
	assert.Check(t, is.Contains(res.Stdout(), "runners.env.API_TOKEN holds a access token in plain text: the migrated file drops it"))
	b, err := os.ReadFile(out)
	assert.NilError(t, err)
	tg.assertNoSecrets(t, string(b))
	assert.Check(t, !strings.Contains(string(b), "abcdefghijklmnopq"), "a token reached the written file:\n%s", b)
	assert.Check(t, is.Contains(string(b), "executor = \"kubernetes\""), "the rest is kept")

	commented := filepath.Join(dir, "commented.yaml")
	assert.NilError(t, os.WriteFile(commented, []byte("gitlabUrl: https://gitlab.example.com/\n# the old one was glrt-zyxwvutsrqponmlkjihg\nconcurrent: 4\n"), 0o600))
	writes := tg.writes()
	res = tg.run(t, tg.seed.MaintainerToken, nil, "migrate", "--helm-values", commented, "--project-id", "42", "--variable-key", "OTHER", "--write", filepath.Join(dir, "c.yaml"))
	res.Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "the migrated file would still hold a runner authentication token"})
	assert.Check(t, is.Equal(tg.writes(), writes), "migrate changed GitLab")
	_, err = os.Stat(filepath.Join(dir, "c.yaml"))
	assert.Check(t, os.IsNotExist(err))
}

// TestRenderJSONNeverPrintsTheToken: -o json promises one object without a token, so render
// refuses it without --file and with --file prints what it wrote.
func TestRenderJSONNeverPrintsTheToken(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", "42").Assert(t, icmd.Success)
	env := []string{"RUNNER_TOKEN=" + mustVar(t, tg).Value}
	res := tg.run(t, "", env, "render", "--format", "secret", "-o", "json")
	res.Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "render -o json writes the token only to a file"})
	assert.Check(t, is.Contains(res.Stdout(), `"exit_code": 2`))
	file := filepath.Join(t.TempDir(), "secret.yaml")
	res = tg.run(t, "", env, "render", "--format", "secret", "-o", "json", "--file", file)
	res.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(res.Stdout(), `"file": "`+file+`"`))
	b, _ := os.ReadFile(file)
	assert.Check(t, is.Contains(string(b), "runner-token:"))
}
