package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

const helmTestdata = "../../internal/migrate/testdata/helm/"

func TestMigrateHelmValuesDryRunThenWriteThenRerun(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	orig, err := os.ReadFile(helmTestdata + "chart-runners.yaml")
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(values, orig, 0o644))
	out := filepath.Join(dir, "migrated.yaml")

	dry := tg.run(t, tok, nil, "migrate", "--helm-values", values, "--project-id", "42", "--write", out, "--dry-run")
	dry.Assert(t, icmd.Expected{Out: "would create project_type runner"})
	assert.Check(t, is.Contains(dry.Stdout(), "-  maximumTimeout: 3600"))
	assert.Check(t, is.Equal(tg.writes(), 0), "--dry-run changes nothing on GitLab")
	_, err = os.Stat(out)
	assert.Check(t, os.IsNotExist(err), "--dry-run writes no file")

	r := tg.run(t, tok, nil, "migrate", "--helm-values", values, "--project-id", "42", "--write", out, "-o", "json")
	r.Assert(t, icmd.Success)
	var res struct {
		Result struct {
			Action   string `json:"action"`
			RunnerID int64  `json:"runner_id"`
		} `json:"result"`
		MigratedValues string `json:"migrated_values"`
	}
	assert.NilError(t, json.Unmarshal([]byte(r.Stdout()), &res))
	assert.Check(t, is.Equal(res.Result.Action, "created"))
	runner, ok := tg.fake.Runner(res.Result.RunnerID)
	assert.Assert(t, ok)
	assert.Check(t, is.DeepEqual(runner.TagList, []string{"k8s", "docker", "linux"}))
	assert.Check(t, is.Equal(runner.AccessLevel, "ref_protected"))
	assert.Check(t, is.Equal(runner.MaximumTimeout, int64(3600)))
	assert.Check(t, !runner.RunUntagged && !runner.Locked)
	tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", res.Result.RunnerID)
	migrated, err := os.ReadFile(out)
	assert.NilError(t, err)
	want, err := os.ReadFile(helmTestdata + "chart-runners.migrated.golden")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(migrated), string(want)), "the binary writes what the migrate package's golden file says")
	tg.assertNoSecrets(t, string(migrated))
	assert.Check(t, !strings.Contains(string(migrated), "GR1348941"))

	writes := tg.writes()
	again := tg.run(t, tok, nil, "migrate", "--helm-values", values, "--project-id", "42", "--write", out)
	again.Assert(t, icmd.Expected{Out: "unchanged project_type runner"})
	assert.Check(t, is.Equal(tg.writes(), writes), "re-running migrate is idempotent")
	// Migrating the migrated file again changes nothing either.
	tg.run(t, tok, nil, "migrate", "--helm-values", out, "--project-id", "42", "--dry-run", "--tag-list", "k8s,docker,linux").Assert(t, icmd.Success)
}

func TestMigrateRegisterCommand(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	dir := t.TempDir()
	cmd := filepath.Join(dir, "register.sh")
	assert.NilError(t, os.WriteFile(cmd, []byte(`sudo gitlab-runner register \
  --non-interactive \
  --url "https://gitlab.example.com/" \
  --registration-token "GR1348941zzzzzzzzzzzzzzzzzz" \
  --executor docker --docker-image alpine:3.20 \
  --description "build runner" \
  --tag-list "docker,linux" --run-untagged=false --locked=false \
  --access-level ref_protected --maximum-timeout 7200
`), 0o600))
	r := tg.run(t, tg.seed.MaintainerToken, nil, "migrate", "--register-command-file", cmd, "--project-id", "platform/deploy")
	r.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(r.Stdout(), `sudo gitlab-runner register --non-interactive --url https://gitlab.example.com/ --token "$RUNNER_TOKEN" --executor docker --docker-image alpine:3.20 --description 'build runner'`))
	assert.Check(t, !strings.Contains(r.Stdout()+r.Stderr(), "GR1348941zzz"), "the registration token is never printed")
	assert.Check(t, is.Contains(r.Stderr(), "reset the registration token"))
	runners := tg.fake.Runners()
	assert.Assert(t, is.Len(runners, 1))
	assert.Check(t, is.Equal(runners[0].Description, "build runner"))
	assert.Check(t, is.Equal(runners[0].MaximumTimeout, int64(7200)))
	assert.Check(t, is.Equal(runners[0].AccessLevel, "ref_protected"))

	bad := tg.run(t, tg.seed.MaintainerToken, nil, "migrate", "--register-command", "gitlab-runner unregister --all-runners", "--project-id", "42")
	bad.Assert(t, icmd.Expected{ExitCode: exitUsage})
	assert.Check(t, is.Len(tg.fake.Runners(), 1))
}

func TestMigrateBadValuesFile(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	assert.NilError(t, os.WriteFile(values, []byte("gitlabUrl: https://gitlab.example.com\nrunners:\n  locked: \"yes\"\n"), 0o644))
	r := tg.run(t, tg.seed.MaintainerToken, nil, "migrate", "--helm-values", values, "--project-id", "42")
	r.Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "values.yaml:3: runners.locked is \"yes\": expected true or false"})
	assert.Check(t, is.Equal(tg.writes(), 0))
}

func TestRenderForDeployJobs(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	decode(t, tg.run(t, tg.seed.MaintainerToken, nil, "create", "-o", "json", "--project-id", "42"))
	tokenValue := mustVar(t, tg).Value
	env := []string{"RUNNER_TOKEN=" + tokenValue}

	// The deploy job's intended output: a Secret on stdout, piped into kubectl.
	secret := icmd.RunCmd(icmd.Command(binary, "render", "--format", "secret", "--name", "runner", "--namespace", "ci"), icmd.WithEnv(env...))
	secret.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(secret.Stdout(), "runner-registration-token: \"\""))
	assert.Check(t, is.Contains(secret.Stdout(), "runner-token: "+base64.StdEncoding.EncodeToString([]byte(tokenValue))+"\n"), "base64 of the token with no trailing newline")
	assert.Check(t, !strings.Contains(secret.Stderr(), tokenValue))

	file := filepath.Join(t.TempDir(), "values.yaml")
	r := icmd.RunCmd(icmd.Command(binary, "render", "--format", "helm-values", "--file", file, "--gitlab-url", tg.url), icmd.WithEnv(env...))
	r.Assert(t, icmd.Success)
	tg.assertNoSecrets(t, r.Stdout()+r.Stderr())
	st, err := os.Stat(file)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o600)))
	b, _ := os.ReadFile(file)
	assert.Check(t, is.Contains(string(b), "runnerToken: "))

	wrong := icmd.RunCmd(icmd.Command(binary, "render", "--format", "secret"), icmd.WithEnv("RUNNER_TOKEN="+tg.seed.MaintainerToken))
	wrong.Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "$RUNNER_TOKEN holds an access token (glpat-): render needs a runner authentication token"})
	tg.assertNoSecrets(t, wrong.Stdout()+wrong.Stderr())
}

func TestExplainNeverEchoesTheToken(t *testing.T) {
	tg := newTarget(t)
	r := icmd.RunCmd(icmd.Command(binary, "explain"), icmd.WithStdin(strings.NewReader(tg.seed.MaintainerToken+"\n")))
	r.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(strings.ToLower(r.Stdout()), "access token"))
	tg.assertNoSecrets(t, r.Stdout()+r.Stderr())
	icmd.RunCmd(icmd.Command(binary, "explain", "410 Gone - runner registration disallowed")).
		Assert(t, icmd.Expected{Out: "registration tokens are disabled"})
}

// TestFileTypeVariable: with create --variable-type file, a job's $RUNNER_TOKEN is the path of
// a file holding the token; render and rotate --use-runner-token read it from there.
func TestFileTypeVariable(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	tg.run(t, tok, nil, "create", "--project-id", "42", "--variable-type", "file").Assert(t, icmd.Success)
	file := filepath.Join(t.TempDir(), "RUNNER_TOKEN")
	assert.NilError(t, os.WriteFile(file, []byte(mustVar(t, tg).Value+"\n"), 0o600))

	r := icmd.RunCmd(icmd.Command(binary, "render", "--format", "secret"), icmd.WithEnv("RUNNER_TOKEN="+file))
	r.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(r.Stdout(), base64.StdEncoding.EncodeToString([]byte(mustVar(t, tg).Value))))
	tg.run(t, tok, []string{"RUNNER_TOKEN=" + file}, "rotate", "--project-id", "42", "--use-runner-token").Assert(t, icmd.Success)
}

// TestMigrateExplicitFlagsWin: a flag given on the command line overrides the legacy value,
// even when it equals the flag's default.
func TestMigrateExplicitFlagsWin(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	values := filepath.Join(t.TempDir(), "values.yaml")
	assert.NilError(t, os.WriteFile(values, []byte("runners:\n  tags: docker\n  protected: true\n  runUntagged: false\n"), 0o644))
	tg.run(t, tg.seed.MaintainerToken, nil, "migrate", "--helm-values", values, "--project-id", "42",
		"--no-locked", "--run-untagged", "--access-level", "not_protected").Assert(t, icmd.Success)
	r := tg.fake.Runners()[0]
	assert.Check(t, !r.Locked, "--no-locked wins over the legacy default of locked")
	assert.Check(t, r.RunUntagged)
	assert.Check(t, is.Equal(r.AccessLevel, "not_protected"))
	assert.Check(t, is.DeepEqual(r.TagList, []string{"docker"}), "what no flag names comes from the values file")
}
