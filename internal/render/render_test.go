package render

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"go.yaml.in/yaml/v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/fs"
	"gotest.tools/v3/golden"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// fakeToken is shorter than what secret scanners look for.
const fakeToken = "glrt-t3_fake_example0"

func TestKubernetesSecret(t *testing.T) {
	out, err := KubernetesSecret("gitlab-runner-secret", "gitlab-runner", fakeToken)
	assert.NilError(t, err)
	golden.Assert(t, string(out), "secret.golden")

	out, err = KubernetesSecret("gitlab-runner-secret", "", fakeToken+"\n")
	assert.NilError(t, err)
	golden.Assert(t, string(out), "secret-no-namespace.golden")

	// The manifest is YAML a Kubernetes client reads, with the token and no newline after it.
	var secret struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Type       string            `yaml:"type"`
		Metadata   map[string]string `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
	}
	assert.NilError(t, yaml.Unmarshal(out, &secret))
	assert.Check(t, is.Equal(secret.APIVersion, "v1"))
	assert.Check(t, is.Equal(secret.Kind, "Secret"))
	assert.Check(t, is.Equal(secret.Type, "Opaque"))
	assert.Check(t, is.DeepEqual(secret.Metadata, map[string]string{"name": "gitlab-runner-secret"}))
	raw, err := base64.StdEncoding.DecodeString(secret.Data[SecretTokenKey])
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(raw), fakeToken), "the token must be stored without a trailing newline")
	assert.Check(t, !strings.HasSuffix(string(raw), "\n"))
	reg, ok := secret.Data[SecretRegistrationTokenKey]
	assert.Check(t, ok, "the chart mounts runner-registration-token too: it must exist")
	assert.Check(t, is.Equal(reg, ""))
}

func TestHelmValues(t *testing.T) {
	out, err := HelmValues("https://gitlab.example.com/", fakeToken)
	assert.NilError(t, err)
	golden.Assert(t, string(out), "values.golden")

	var v map[string]string
	assert.NilError(t, yaml.Unmarshal(out, &v))
	assert.Check(t, is.DeepEqual(v, map[string]string{"gitlabUrl": "https://gitlab.example.com/", "runnerToken": fakeToken}))
}

func TestConfigTOMLStanza(t *testing.T) {
	out, err := ConfigTOMLStanza(`build "01" \ eu`, "https://gitlab.example.com", " "+fakeToken+"\r\n", "docker+machine")
	assert.NilError(t, err)
	golden.Assert(t, string(out), "config.toml.golden")

	var cfg struct {
		Runners []struct {
			Name     string `toml:"name"`
			URL      string `toml:"url"`
			Token    string `toml:"token"`
			Executor string `toml:"executor"`
		} `toml:"runners"`
	}
	assert.NilError(t, toml.Unmarshal(out, &cfg))
	assert.Assert(t, is.Len(cfg.Runners, 1))
	r := cfg.Runners[0]
	assert.Check(t, is.Equal(r.Name, `build "01" \ eu`))
	assert.Check(t, is.Equal(r.URL, "https://gitlab.example.com"))
	assert.Check(t, is.Equal(r.Token, fakeToken))
	assert.Check(t, is.Equal(r.Executor, "docker+machine"))

	// Control characters in the name stay inside the string.
	out, err = ConfigTOMLStanza("a\tb\x01c", "https://gitlab.example.com", fakeToken, "shell")
	assert.NilError(t, err)
	assert.NilError(t, toml.Unmarshal(out, &cfg))
	assert.Check(t, is.Equal(cfg.Runners[0].Name, "a\tb\x01c"))
}

func TestTokenKinds(t *testing.T) {
	cases := []struct{ token, want string }{
		{"", "the token is empty: expected a runner authentication token"},
		{"  \n", "the token is empty"},
		{"GR1348941fake_example0", "the token is a legacy runner registration token (GR1348941…): expected a runner authentication token (glrt-…)"},
		{"glpat-fake_example0", "the token is an access token (glpat-): expected a runner authentication token"},
		{"glcbt-fake_example0", "the token is a CI job token: expected"},
		{"gldt-fake_example0", "the token is a deploy token (gldt-)"},
		{"glptt-fake_example0", "the token is a pipeline trigger token (glptt-)"},
		{"glft-fake_example0", "the token is a feed token (glft-)"},
		{"$RUNNER_TOKEN", "the token is an unexpanded variable reference"},
		{"s3cr3tvalue", "the token is not a runner authentication token: expected"},
		{"glrt-a b", "the token has white space inside it"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			for name, render := range map[string]func(string) error{
				"secret": func(tok string) error { _, err := KubernetesSecret("s", "", tok); return err },
				"values": func(tok string) error { _, err := HelmValues("https://gitlab.example.com", tok); return err },
				"toml": func(tok string) error {
					_, err := ConfigTOMLStanza("n", "https://gitlab.example.com", tok, "shell")
					return err
				},
			} {
				err := render(c.token)
				assert.Check(t, is.ErrorContains(err, c.want), name)
				assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage), name)
				if len(strings.TrimSpace(c.token)) > 3 {
					assert.Check(t, !strings.Contains(err.Error(), strings.TrimSpace(c.token)), "%s: the error shows the token: %v", name, err)
				}
			}
		})
	}
	// Instance prefixes and routable tokens are runner tokens too.
	for _, tok := range []string{"acme-glrt-t3_fake_example0", "glrt-cHJvamVjdA.01.1a0fake00"} {
		_, err := HelmValues("https://gitlab.example.com", tok)
		assert.Check(t, err, tok)
	}
}

func TestInvalidInputs(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"secret name", errOf(KubernetesSecret("Runner_Secret", "", fakeToken)), `Secret name "Runner_Secret" is not valid: expected a Kubernetes name`},
		{"token as secret name", errOf(KubernetesSecret(fakeToken, "", fakeToken)), `Secret name (a value that looks like a token) is not valid`},
		{"namespace", errOf(KubernetesSecret("s", "my.namespace", fakeToken)), `namespace "my.namespace" is not valid: expected a Kubernetes namespace`},
		{"url scheme", errOf(HelmValues("gitlab.example.com", fakeToken)), `GitLab URL "gitlab.example.com" is not valid: expected an http(s) URL such as https://gitlab.example.com`},
		{"url credentials", errOf(HelmValues("https://root:"+fakeToken+"@gitlab.example.com", fakeToken)), `the GitLab URL holds credentials (user:password@): expected the plain URL`},
		{"empty name", errOf(ConfigTOMLStanza(" ", "https://gitlab.example.com", fakeToken, "shell")), `the runner name is empty: expected a name for the [[runners]] entry`},
		{"executor", errOf(ConfigTOMLStanza("n", "https://gitlab.example.com", fakeToken, "Docker Machine")), `executor "Docker Machine" is not valid: expected a gitlab-runner executor such as shell, docker or kubernetes`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Check(t, is.ErrorContains(c.err, c.want))
			assert.Check(t, is.Equal(fail.Code(c.err), fail.CodeUsage))
			assert.Check(t, !strings.Contains(c.err.Error(), fakeToken))
		})
	}
}

func errOf(_ []byte, err error) error { return err }

func TestWriteFileCreatesOwnerOnly(t *testing.T) {
	dir := fs.NewDir(t, "render")
	path := dir.Join("secret.yaml")
	assert.NilError(t, WriteFile(path, []byte("data\n")))
	assertMode(t, path, 0o600)
	assertContent(t, path, "data\n")
}

func TestWriteFileNarrowsAnExistingFile(t *testing.T) {
	dir := fs.NewDir(t, "render", fs.WithFile("values.yaml", "old content that is longer\n", fs.WithMode(0o644)))
	path := dir.Join("values.yaml")
	assertMode(t, path, 0o644)
	assert.NilError(t, WriteFile(path, []byte("new\n")))
	assertMode(t, path, 0o600)
	assertContent(t, path, "new\n")
}

func TestWriteFileNarrowsGroupAndOthersOnly(t *testing.T) {
	dir := fs.NewDir(t, "render", fs.WithFile("wide", "x", fs.WithMode(0o755)))
	assert.NilError(t, WriteFile(dir.Join("wide"), []byte("y")))
	assertMode(t, dir.Join("wide"), 0o600)
}

func TestWriteFileReadOnlyFile(t *testing.T) {
	dir := fs.NewDir(t, "render", fs.WithFile("t", "x", fs.WithMode(0o400)))
	err := WriteFile(dir.Join("t"), []byte("y"))
	if os.Geteuid() == 0 {
		// root writes anyway; the new file has the mode of every file this writes.
		assert.NilError(t, err)
		assertMode(t, dir.Join("t"), 0o600)
		return
	}
	// Not writable by its owner: opening it fails, with the path in the error.
	assert.ErrorContains(t, err, dir.Join("t"))
}

func TestWriteFileRefusesADirectory(t *testing.T) {
	dir := fs.NewDir(t, "render", fs.WithDir("out"))
	err := WriteFile(dir.Join("out"), []byte("x"))
	assert.ErrorContains(t, err, dir.Join("out")+" is a directory: expected the path of a file to write")
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage))
}

func TestWriteFileMissingDirectory(t *testing.T) {
	dir := fs.NewDir(t, "render")
	err := WriteFile(filepath.Join(dir.Path(), "nope", "file"), []byte("x"))
	assert.ErrorContains(t, err, "no such file or directory")
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(fi.Mode().Perm(), want))
}

func assertContent(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), want))
}

func TestConfigTOMLWithIDAndSystemID(t *testing.T) {
	sid, err := SystemID("runner-2")
	assert.NilError(t, err)
	out, err := ConfigTOML(Stanza{Name: "runner-2", URL: "https://gitlab.example.com", Token: fakeToken, Executor: "docker-autoscaler", RunnerID: 4711, SystemID: sid})
	assert.NilError(t, err)
	golden.Assert(t, string(out), "config-id.toml.golden")

	var cfg struct {
		Runners []struct {
			ID           int64           `toml:"id"`
			Token        string          `toml:"token"`
			FeatureFlags map[string]bool `toml:"feature_flags"`
			// gitlab-runner rotates the token itself only when it knows an expiry.
			TokenExpiresAt *string `toml:"token_expires_at"`
		} `toml:"runners"`
	}
	assert.NilError(t, toml.Unmarshal(out, &cfg))
	assert.Assert(t, is.Len(cfg.Runners, 1))
	assert.Check(t, is.Equal(cfg.Runners[0].ID, int64(4711)))
	assert.Check(t, cfg.Runners[0].FeatureFlags["FF_DISABLE_AUTOMATIC_TOKEN_ROTATION"])
	assert.Check(t, cfg.Runners[0].TokenExpiresAt == nil)
}

func TestSystemID(t *testing.T) {
	a, err := SystemID("gitlab-runner-0")
	assert.NilError(t, err)
	b, _ := SystemID("gitlab-runner-0")
	c, _ := SystemID("gitlab-runner-1")
	assert.Check(t, is.Equal(a, b), "the same host gets the same id")
	assert.Check(t, a != c, "two replicas get two ids")
	// The format gitlab-runner accepts in .runner_system_id (common/system_id_state.go).
	assert.Check(t, regexp.MustCompile(`^s_[0-9a-zA-Z]{12}$`).MatchString(a), a)
	lit, err := SystemID(" r_0123456789ab\n")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(lit, "r_0123456789ab"), "a system id is kept as it is")
	_, err = SystemID(" ")
	assert.Check(t, is.ErrorContains(err, "--system-id is empty"))
	_, err = ConfigTOML(Stanza{Name: "n", URL: "https://gitlab.example.com", Token: fakeToken, Executor: "shell", SystemID: "s_short"})
	assert.Check(t, is.ErrorContains(err, "system id \"s_short\" is not valid"))
}
