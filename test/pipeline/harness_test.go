package pipeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/fs"
	"gotest.tools/v3/icmd"
)

// The tools scripts/install-tools.sh installs: Node 22 and gitlab-ci-local.
var (
	nodeBin        = filepath.Join(repoRoot, "tools/node_modules/.bin/node")
	gitlabCILocal  = filepath.Join(repoRoot, "tools/node_modules/gitlab-ci-local/dist/index.js")
	pipelineBinDir string // runner-bootstrap, first on the jobs' PATH
	fakeBin        string
	buildOnce      sync.Once
	errBuild       error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pipelineBinDir != "" {
		_ = os.RemoveAll(filepath.Dir(pipelineBinDir))
	}
	os.Exit(code)
}

// requireTools skips when gitlab-ci-local is not installed, except in CI, where a missing
// tool must fail rather than silently test nothing.
func requireTools(t *testing.T) {
	t.Helper()
	var missing []string
	for _, p := range []string{nodeBin, gitlabCILocal} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	for _, tool := range []string{"git", "rsync"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("gitlab-ci-local tests need %s: run scripts/install-tools.sh (or make tools)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// buildBinaries builds runner-bootstrap and the fake GitLab once per test run.
func buildBinaries(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pipeline-bin-") //nolint:usetesting // built once for every test of the run, so it outlives t
		if err != nil {
			errBuild = err
			return
		}
		pipelineBinDir = filepath.Join(dir, "bin")
		fakeBin = filepath.Join(dir, "gitlabfake")
		start := time.Now()
		for _, b := range []struct{ out, pkg string }{
			{filepath.Join(pipelineBinDir, "runner-bootstrap"), "./cmd/runner-bootstrap"},
			{fakeBin, "./test/gitlabfake/cmd/gitlabfake"},
		} {
			cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				errBuild = fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
				return
			}
		}
		fmt.Fprintf(os.Stderr, "pipeline: built runner-bootstrap and gitlabfake in %s\n", time.Since(start).Round(time.Millisecond))
	})
	assert.NilError(t, errBuild)
}

// fake is a running gitlabfake process with the standard seed.
type fake struct {
	URL string
	Env map[string]string // the --env-file lines: GITLAB_TOKEN, MAINTAINER_TOKEN, OWNER_TOKEN, ...
}

func startFake(t *testing.T) *fake {
	t.Helper()
	requireTools(t) // only the gitlab-ci-local tests use the fake
	buildBinaries(t)
	envFile := filepath.Join(t.TempDir(), "fake.env")
	cmd := exec.Command(fakeBin, "--addr", "127.0.0.1:0", "--env-file", envFile)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	assert.NilError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	f := &fake{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("gitlabfake exited early:\n%s", logs.String())
		default:
		}
		// The env file is written before the fake serves, so wait for both.
		if env, err := readEnvFile(envFile); err == nil && env["GITLAB_URL"] != "" && env["GITLAB_TOKEN"] != "" {
			if resp, err := http.Get(env["GITLAB_URL"] + "/-/fake/state"); err == nil {
				resp.Body.Close()
				f.URL, f.Env = env["GITLAB_URL"], env
				return f
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gitlabfake did not start in 10s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env, sc.Err()
}

// State returns the fake's runners and variables, tokens and values included.
func (f *fake) State(t *testing.T) gitlabfake.State {
	t.Helper()
	var s gitlabfake.State
	f.getJSON(t, "/-/fake/state", &s)
	return s
}

// Requests returns the API requests the fake has seen (credentials redacted).
func (f *fake) Requests(t *testing.T) []gitlabfake.Request {
	t.Helper()
	var r []gitlabfake.Request
	f.getJSON(t, "/-/fake/requests", &r)
	return r
}

func (f *fake) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(f.URL + path)
	assert.NilError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK, "GET %s", path)
	assert.NilError(t, json.NewDecoder(resp.Body).Decode(v))
}

// project is a git repository holding a copy of templates/ and compat/ (and any files ops add) and a
// .gitlab-ci.yml that includes the components at $CI_SERVER_FQDN/$CI_PROJECT_PATH/<name>@$CI_COMMIT_SHA,
// which gitlab-ci-local resolves to the working tree's templates.
type project struct {
	dir  *fs.Dir
	home string
}

func newProject(t *testing.T, ciYAML string, ops ...fs.PathOp) *project {
	t.Helper()
	requireTools(t)
	dir := fs.NewDir(t, "component-project", append([]fs.PathOp{
		fs.WithDir("templates", fs.FromDir(filepath.Join(repoRoot, "templates"))),
		fs.WithDir("compat", fs.FromDir(filepath.Join(repoRoot, "compat"))),
		fs.WithFile(".gitlab-ci.yml", ciYAML),
	}, ops...)...)
	p := &project{dir: dir, home: t.TempDir()}
	// An identity for the test commits; gitlab-ci-local also reads it (GITLAB_USER_*).
	assert.NilError(t, os.WriteFile(filepath.Join(p.home, ".gitconfig"),
		[]byte("[user]\n\tname = pipeline test\n\temail = pipeline@test.invalid\n"), 0o600))
	p.git(t, "init", "--quiet", "--initial-branch=main")
	p.commit(t, "components under test")
	p.git(t, "remote", "add", "origin", "https://gitlab.example.com/platform/deploy.git")
	// gitlab-ci-local asks origin/HEAD for the default branch; without it, it warns.
	p.git(t, "update-ref", "refs/remotes/origin/main", "HEAD")
	p.git(t, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
	return p
}

func (p *project) git(t *testing.T, args ...string) {
	t.Helper()
	res := icmd.RunCmd(icmd.Command("git", args...), icmd.Dir(p.dir.Path()), icmd.WithEnv(p.env()...))
	res.Assert(t, icmd.Success)
}

func (p *project) commit(t *testing.T, msg string) {
	t.Helper()
	p.git(t, "add", "-A")
	p.git(t, "commit", "--quiet", "-m", msg)
}

// setCI replaces .gitlab-ci.yml and commits it.
func (p *project) setCI(t *testing.T, ciYAML string) {
	t.Helper()
	assert.NilError(t, os.WriteFile(p.dir.Join(".gitlab-ci.yml"), []byte(ciYAML), 0o644))
	p.commit(t, "change .gitlab-ci.yml")
}

// env is the whole environment of git and gitlab-ci-local: nothing of the test's own
// (a CI job running these tests must not leak its CI_* or GITLAB_* variables into the jobs),
// the freshly built runner-bootstrap first on PATH, and a private HOME, so no
// ~/.gitlab-ci-local/variables.yml of the machine is read.
func (p *project) env() []string {
	return []string{
		"PATH=" + pipelineBinDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + p.home,
		"LANG=C.UTF-8",
		"GIT_CONFIG_NOSYSTEM=1",
	}
}

// run runs gitlab-ci-local in the project with the shell executor against the fake:
// CI_SERVER_URL and GITLAB_TOKEN are set as CI/CD variables would be.
func (p *project) run(t *testing.T, f *fake, token string, extraArgs ...string) *icmd.Result {
	t.Helper()
	return p.gitlabCILocal(t, []string{
		"--variable", "CI_SERVER_URL=" + f.URL,
		"--variable", "GITLAB_TOKEN=" + token,
		"--ignore-predefined-vars", "CI_SERVER_URL,CI_PROJECT_ID",
	}, extraArgs)
}

// runLocal runs gitlab-ci-local in the project with the shell executor and the given
// arguments, without a fake GitLab.
func (p *project) runLocal(t *testing.T, extraArgs ...string) *icmd.Result {
	t.Helper()
	return p.gitlabCILocal(t, nil, extraArgs)
}

// gitlabCILocal runs gitlab-ci-local with the unlogged arguments (the fake's token) and
// the logged ones.
func (p *project) gitlabCILocal(t *testing.T, unlogged, extraArgs []string) *icmd.Result {
	t.Helper()
	args := append(append([]string{gitlabCILocalAbs(t), "--force-shell-executor", "--no-color"}, unlogged...), extraArgs...)
	start := time.Now()
	res := icmd.RunCmd(icmd.Command(nodeAbs(t), args...),
		icmd.Dir(p.dir.Path()), icmd.WithEnv(p.env()...), icmd.WithTimeout(2*time.Minute))
	t.Logf("gitlab-ci-local %s: exit %d in %s", strings.Join(append([]string{"--force-shell-executor"}, extraArgs...), " "), res.ExitCode, time.Since(start).Round(time.Millisecond))
	return res
}

func nodeAbs(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(nodeBin)
	assert.NilError(t, err)
	return p
}

func gitlabCILocalAbs(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(gitlabCILocal)
	assert.NilError(t, err)
	return p
}

// stateFiles returns every file gitlab-ci-local wrote under .gitlab-ci-local/ (job logs
// in output/, artifacts and dotenv reports, the expanded configuration), by relative path.
func (p *project) stateFiles(t *testing.T) map[string]string {
	t.Helper()
	root := p.dir.Join(".gitlab-ci-local")
	files := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// builds/ is the job's copy of the repository, not output.
			if d.Name() == "builds" {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		files[rel] = string(b)
		return nil
	})
	assert.NilError(t, err)
	return files
}

// dotenv reads the dotenv report a job published. gitlab-ci-local encodes characters
// other than [A-Za-z0-9_-] in the job's directory name, so for such a name the project
// must have exactly one report.
func (p *project) dotenv(t *testing.T, job string) map[string]string {
	t.Helper()
	const report = ".gitlab-ci-reports/dotenv/runner-bootstrap.env"
	path := p.dir.Join(".gitlab-ci-local", "artifacts", job, report)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(job) {
		matches, err := filepath.Glob(p.dir.Join(".gitlab-ci-local", "artifacts", "*", report))
		assert.NilError(t, err)
		assert.Assert(t, is.Len(matches, 1), "dotenv reports: %v", matches)
		path = matches[0]
	}
	env, err := readEnvFile(path)
	assert.NilError(t, err, "dotenv report of job %s", job)
	return env
}
