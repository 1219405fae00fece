package migrate

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

type registerCase struct {
	name      string
	cmdline   string
	runner    spec.Runner
	url       string
	tokenFrom string
	tokenKind string
	kept      []string
}

var registerCases = []registerCase{
	{
		name: "gitlab docs 15.9 example, booleans as separate words",
		cmdline: `gitlab-runner register \
    --non-interactive \
    --executor "shell" \
    --url "https://gitlab.com/" \
    --tag-list "shell,mac,gdk,test" \
    --run-untagged "false" \
    --locked "false" \
    --access-level "not_protected" \
    --registration-token "GR1348941fake_example0"`,
		runner:    spec.Runner{TagList: []string{"shell", "mac", "gdk", "test"}, AccessLevel: spec.NotProtected},
		url:       "https://gitlab.com/",
		tokenFrom: "--registration-token", tokenKind: "registration token",
		kept: []string{"--executor", "shell"},
	},
	{
		name: "runner docs docker example, = forms",
		cmdline: `sudo gitlab-runner register \
  --non-interactive \
  --url "https://gitlab.com/" \
  --registration-token "$PROJECT_REGISTRATION_TOKEN" \
  --executor "docker" \
  --docker-image alpine:latest \
  --description "docker-runner" \
  --maintenance-note "Free-form maintainer notes about this runner" \
  --tag-list "docker,aws" \
  --run-untagged="true" \
  --locked="false" \
  --access-level="ref_protected"`,
		runner: spec.Runner{Description: "docker-runner", TagList: []string{"docker", "aws"}, RunUntagged: true,
			AccessLevel: spec.RefProtected, MaintenanceNote: "Free-form maintainer notes about this runner"},
		url:       "https://gitlab.com/",
		tokenFrom: "--registration-token", tokenKind: "variable $PROJECT_REGISTRATION_TOKEN",
		kept: []string{"--executor", "docker", "--docker-image", "alpine:latest", "--description", "docker-runner"},
	},
	{
		name:    "environment variables in front",
		cmdline: `REGISTRATION_TOKEN=GR1348941fake_example0 CI_SERVER_URL=https://gitlab.example.com RUNNER_TAG_LIST="docker, linux" REGISTER_LOCKED=false REGISTER_RUN_UNTAGGED=true REGISTER_ACCESS_LEVEL=ref_protected REGISTER_MAXIMUM_TIMEOUT=3600 REGISTER_PAUSED=true REGISTER_MAINTENANCE_NOTE='owned by team-infra' RUNNER_NAME=build-01 RUNNER_EXECUTOR=shell gitlab-runner register --non-interactive`,
		runner: spec.Runner{Description: "build-01", TagList: []string{"docker", "linux"}, RunUntagged: true,
			AccessLevel: spec.RefProtected, MaximumTimeout: 3600, Paused: true, MaintenanceNote: "owned by team-infra"},
		url:       "https://gitlab.example.com",
		tokenFrom: "REGISTRATION_TOKEN", tokenKind: "registration token",
	},
	{
		name:    "sudo with assignments after it",
		cmdline: `sudo REGISTRATION_TOKEN=GR1348941fake_example0 RUNNER_TAG_LIST=a,b /usr/local/bin/gitlab-runner register -n -u https://gitlab.example.com --executor docker --docker-image alpine:3.20 --docker-volumes /var/run/docker.sock:/var/run/docker.sock --locked=false --name "my runner"`,
		runner:  spec.Runner{Description: "my runner", TagList: []string{"a", "b"}},
		url:     "https://gitlab.example.com", tokenFrom: "REGISTRATION_TOKEN", tokenKind: "registration token",
		kept: []string{"--executor", "docker", "--docker-image", "alpine:3.20", "--docker-volumes", "/var/run/docker.sock:/var/run/docker.sock", "--name", "my runner"},
	},
	{
		name:    "export lines before the command",
		cmdline: "export REGISTRATION_TOKEN=GR1348941fake_example0\nexport CI_SERVER_URL=https://gitlab.example.com RUNNER_TAG_LIST=shell\ncd /tmp\ngitlab-runner register --non-interactive --executor shell\n",
		runner:  spec.Runner{TagList: []string{"shell"}, Locked: true},
		url:     "https://gitlab.example.com", tokenFrom: "REGISTRATION_TOKEN", tokenKind: "registration token",
		kept: []string{"--executor", "shell"},
	},
	{
		name:    "short flags and single-dash long flags",
		cmdline: `gitlab-runner register -n -u https://gitlab.example.com/ -r GR1348941fake_example0 -description short -tag-list x -executor shell`,
		runner:  spec.Runner{Description: "short", TagList: []string{"x"}, Locked: true},
		url:     "https://gitlab.example.com/", tokenFrom: "-r", tokenKind: "registration token",
		kept: []string{"-description", "short", "-executor", "shell"},
	},
	{
		name: "docker run launcher with -e variables",
		cmdline: `docker run --rm -v /srv/gitlab-runner/config:/etc/gitlab-runner \
  -e REGISTRATION_TOKEN="$REG_TOKEN" -e RUNNER_TAG_LIST=docker -e TZ=UTC \
  gitlab/gitlab-runner:v17.9.3 register --non-interactive --url "$CI_SERVER_URL" \
  --executor docker --docker-image 'alpine:latest' --maximum-timeout=3600`,
		runner:    spec.Runner{TagList: []string{"docker"}, MaximumTimeout: 3600, Locked: true},
		tokenFrom: "REGISTRATION_TOKEN", tokenKind: "variable $REG_TOKEN",
		kept: []string{"--executor", "docker", "--docker-image", "alpine:latest"},
	},
	{
		name: "kubernetes executor with host-side flags kept in order",
		cmdline: `/opt/gitlab-runner/bin/gitlab-runner --debug register --non-interactive --config /etc/gitlab-runner/config.toml \
  --url=https://gitlab.example.com --registration-token=GR1348941fake_example0 \
  --executor kubernetes --kubernetes-namespace ci --kubernetes-privileged \
  --kubernetes-image "ubuntu:22.04" --limit 4 --env "GIT_DEPTH=10" --env 'NAME=a b' \
  --cache-type s3 --cache-shared --cache-s3-bucket-name runner-cache \
  --tls-ca-file=/etc/ssl/certs/internal-ca.pem --builds-dir /builds --shell bash \
  --tag-list k8s --run-untagged`,
		runner:    spec.Runner{TagList: []string{"k8s"}, RunUntagged: true, Locked: true},
		url:       "https://gitlab.example.com",
		tokenFrom: "--registration-token", tokenKind: "registration token",
		kept: []string{"--config", "/etc/gitlab-runner/config.toml", "--executor", "kubernetes", "--kubernetes-namespace", "ci",
			"--kubernetes-privileged", "--kubernetes-image", "ubuntu:22.04", "--limit", "4", "--env", "GIT_DEPTH=10", "--env", "NAME=a b",
			"--cache-type", "s3", "--cache-shared", "--cache-s3-bucket-name", "runner-cache",
			"--tls-ca-file=/etc/ssl/certs/internal-ca.pem", "--builds-dir", "/builds", "--shell", "bash"},
	},
	{
		name:    "windows line endings in continuations",
		cmdline: "gitlab-runner register \\\r\n  --non-interactive \\\r\n  --url https://gitlab.example.com \\\r\n  --registration-token GR1348941fake_example0 \\\r\n  --executor shell\r\n",
		runner:  spec.Runner{RunUntagged: true, Locked: true},
		url:     "https://gitlab.example.com", tokenFrom: "--registration-token", tokenKind: "registration token",
		kept: []string{"--executor", "shell"},
	},
	{
		name:    "already registering with --token",
		cmdline: `gitlab-runner register --non-interactive --url https://gitlab.example.com --token glrt-t3_fake_example0 --executor shell --tag-list linux --locked`,
		runner:  spec.Runner{TagList: []string{"linux"}, Locked: true},
		url:     "https://gitlab.example.com", tokenFrom: "--token", tokenKind: "runner authentication token",
		kept: []string{"--executor", "shell"},
	},
	{
		name:    "runner token given as registration token",
		cmdline: `gitlab-runner register --non-interactive --url https://gitlab.example.com --registration-token glrt-t3_fake_example0 --executor docker --docker-image alpine`,
		runner:  spec.Runner{RunUntagged: true, Locked: true},
		url:     "https://gitlab.example.com", tokenFrom: "--registration-token", tokenKind: "runner authentication token",
		kept: []string{"--executor", "docker", "--docker-image", "alpine"},
	},
	{
		name:      "token from a command, url from the shell",
		cmdline:   `gitlab-runner register --non-interactive --url "$CI_SERVER_URL" --registration-token "$(cat /run/secrets/registration token)" --executor shell --description "$(hostname -s)-shell"`,
		runner:    spec.Runner{RunUntagged: true, Locked: true},
		tokenFrom: "--registration-token", tokenKind: "command output",
		kept: []string{"--executor", "shell", "--description", "$(hostname -s)-shell"},
	},
	{
		name:    "bare booleans, end of options, comments and the old binary name",
		cmdline: "# register the build host\ngitlab-ci-multi-runner register --non-interactive --url https://gitlab.example.com --registration-token GR1348941fake_example0 --paused --locked --run-untagged --tag-list 'a,b' --maintenance-note 'it'\\''s ours' -- extra",
		runner:  spec.Runner{TagList: []string{"a", "b"}, RunUntagged: true, Locked: true, Paused: true, MaintenanceNote: "it's ours"},
		url:     "https://gitlab.example.com", tokenFrom: "--registration-token", tokenKind: "registration token",
		kept: []string{"--", "extra"},
	},
	{
		name:    "flags win over variables",
		cmdline: `RUNNER_TAG_LIST=from-env REGISTER_LOCKED=true gitlab-runner register --tag-list from-flag --locked=false --url https://gitlab.example.com -r GR1348941fake_example0`,
		runner:  spec.Runner{TagList: []string{"from-flag"}},
		url:     "https://gitlab.example.com", tokenFrom: "-r", tokenKind: "registration token",
	},
}

func TestParseRegisterCommand(t *testing.T) {
	var all strings.Builder
	for _, c := range registerCases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseRegisterCommand(c.cmdline)
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(m.Runner(), c.runner))
			assert.Check(t, is.Equal(m.URL(), c.url))
			assert.Check(t, is.Equal(m.TokenFrom, c.tokenFrom))
			assert.Check(t, is.Equal(m.TokenKind, c.tokenKind))
			assert.Check(t, is.DeepEqual(m.KeptArgs, c.kept))

			cmd := m.NewCommand("")
			fmt.Fprintf(&all, "## %s\n%s\n", c.name, cmd)
			for _, w := range m.Warnings {
				fmt.Fprintf(&all, "# warning: %s\n", w)
			}
			all.WriteString("\n")

			// Nothing returned holds the old token.
			out, err := json.Marshal(struct {
				*RegisterMigration
				Runner spec.Runner
				URL    string
				Cmd    string
			}{m, m.Runner(), m.URL(), cmd})
			assert.NilError(t, err)
			assertNoToken(t, string(out))

			// The new command means what it says: read back, it keeps the same host-side flags.
			back, err := ParseRegisterCommand(cmd)
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(back.KeptArgs, m.KeptArgs))
			assert.Check(t, is.Equal(back.URL(), m.URL()))
			assert.Check(t, is.Equal(back.TokenFrom, "--token"))
			assert.Check(t, is.Equal(back.TokenKind, "variable $RUNNER_TOKEN"))
			assert.Check(t, is.Equal(back.NewCommand(""), cmd))
		})
	}
	golden.Assert(t, all.String(), filepath.Join("register", "new-commands.golden"))
}

func TestNewCommandTokenVariable(t *testing.T) {
	m, err := ParseRegisterCommand(`gitlab-runner register --url https://gitlab.example.com -r GR1348941fake_example0 --executor shell`)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(m.NewCommand("DEPLOY_RUNNER_TOKEN"),
		`gitlab-runner register --non-interactive --url https://gitlab.example.com --token "$DEPLOY_RUNNER_TOKEN" --executor shell`))
	assert.Check(t, is.Contains(m.NewCommand("1ST_TOKEN"), `--token "${1ST_TOKEN}"`))
}

func TestNewCommandQuoting(t *testing.T) {
	m, err := ParseRegisterCommand(`gitlab-runner register --url https://gitlab.example.com --executor shell --env 'A=$HOME' --env "B=$HOME" --env C=\$x --builds-dir "/srv/my builds" --env "Q=\"quoted\"" --env 'S=it'"'"'s'`)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(m.NewCommand(""),
		`gitlab-runner register --non-interactive --url https://gitlab.example.com --token "$RUNNER_TOKEN" --executor shell --env 'A=$HOME' --env "B=$HOME" --env 'C=$x' --builds-dir '/srv/my builds' --env 'Q="quoted"' --env 'S=it'\''s'`))
}

func TestNewCommandLoneDollar(t *testing.T) {
	// A $ that expands nothing stays literal: next to "(" it must not become $( when quoted again.
	for in, want := range map[string]string{
		`gitlab-runner register --url https://x "$"\(`:    `'$('`,
		`gitlab-runner register --url https://x a$'b'`:    `'a$b'`,
		`gitlab-runner register --url https://x "$HOME"$`: `"$HOME\$"`,
	} {
		m, err := ParseRegisterCommand(in)
		assert.NilError(t, err)
		cmd := m.NewCommand("")
		assert.Check(t, strings.HasSuffix(cmd, " "+want), "%s gave %s", in, cmd)
		back, err := ParseRegisterCommand(cmd)
		assert.NilError(t, err)
		assert.Check(t, is.DeepEqual(back.KeptArgs, m.KeptArgs))
	}
}

func TestParseRegisterCommandWarnings(t *testing.T) {
	m, err := ParseRegisterCommand(`gitlab-runner register --url https://x.example -r GR1348941fake_example0 --locked "false" --cache-s3-secret-key hunter22 --ssh-password pw --tag-list "$TAGS"`)
	assert.NilError(t, err)
	joined := strings.Join(m.Warnings, "\n")
	assert.Check(t, is.Contains(joined, "--locked false is read as false here"))
	assert.Check(t, is.Contains(joined, "--cache-s3-secret-key passes a secret on the command line"))
	assert.Check(t, is.Contains(joined, "--ssh-password passes a secret on the command line"))
	assert.Check(t, is.Contains(joined, "--tag-list comes from the shell ($TAGS), which runner-bootstrap cannot evaluate: pass --tag-list to runner-bootstrap migrate"))
	assert.Check(t, is.Contains(joined, "reset the registration token in GitLab"))
	assert.Check(t, !strings.Contains(joined, "hunter22"))
}

func TestParseRegisterCommandScrubsTokensEverywhere(t *testing.T) {
	// A token pasted into a host-side flag, or repeated, is still never returned.
	m, err := ParseRegisterCommand(`CI_JOB_TOKEN=glcbt-fake_example0 gitlab-runner register --url https://gitlab.example.com -r oldStyleToken123456 --executor shell --env "T=oldStyleToken123456" --env "P=glpat-fake_example0" --description oldStyleToken123456`)
	assert.NilError(t, err)
	out, err := json.Marshal(struct {
		*RegisterMigration
		R   spec.Runner
		Cmd string
	}{m, m.Runner(), m.NewCommand("")})
	assert.NilError(t, err)
	assertNoToken(t, string(out))
	assert.Check(t, !strings.Contains(string(out), "glcbt-fake"))
	assert.Check(t, is.Contains(m.NewCommand(""), `--env 'T=[registration token]'`))
	assert.Check(t, is.Equal(m.Runner().Description, "[registration token]"))
}

func TestParseRegisterCommandErrors(t *testing.T) {
	cases := []struct{ name, cmdline, want string }{
		{"no register", `gitlab-runner run --working-directory /home/gitlab-runner`, `the command line has no gitlab-runner register: expected a command such as gitlab-runner register`},
		{"other program", `gitlab-runner-helper register`, `the command line has no gitlab-runner register`},
		{"empty", ``, `the command line has no gitlab-runner register`},
		{"two registers", "gitlab-runner register --url a\ngitlab-runner register --url b", `the command line has 2 gitlab-runner register commands: expected one`},
		{"unterminated quote", `gitlab-runner register --description "open`, `the command line has an unterminated " quote: expected a complete shell command`},
		{"unterminated single quote", `gitlab-runner register --description 'open`, `the command line has an unterminated ' quote`},
		{"unterminated substitution", `gitlab-runner register -r $(cat x`, `the command line has an unterminated $(: expected a complete shell command`},
		{"redirection", `gitlab-runner register --url https://x > /tmp/log`, `the command line uses the shell operator ">", which is not supported here: expected one gitlab-runner register command`},
		{"pipe", `echo x | gitlab-runner register`, `the shell operator "|"`},
		{"missing value", `gitlab-runner register --executor shell --url`, `--url has no value: expected --url followed by a value`},
		{"bad boolean", `gitlab-runner register --locked=maybe`, `--locked="maybe" is not a boolean: expected --locked, --locked=true or --locked=false`},
		{"bad boolean variable", `REGISTER_RUN_UNTAGGED=sometimes gitlab-runner register`, `REGISTER_RUN_UNTAGGED is "sometimes": expected true or false`},
		{"bad access level", `gitlab-runner register --access-level protected`, `--access-level is "protected": expected not_protected or ref_protected`},
		{"bad timeout", `gitlab-runner register --maximum-timeout 1h`, `--maximum-timeout is "1h": expected a number of seconds such as 3600`},
		{"token as timeout", `gitlab-runner register --maximum-timeout GR1348941fake_example0`, `--maximum-timeout is [registration token]: expected a number of seconds`},
		{"token as access level", `REGISTER_ACCESS_LEVEL=glrt-t3_fake_example0 gitlab-runner register`, `REGISTER_ACCESS_LEVEL is [runner authentication token]: expected not_protected or ref_protected`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRegisterCommand(c.cmdline)
			assert.ErrorContains(t, err, c.want)
			assertOneSentence(t, err)
			assertNoToken(t, err.Error())
		})
	}
}

func TestIsRunnerProgram(t *testing.T) {
	for s, want := range map[string]bool{
		"gitlab-runner":                                           true,
		"/usr/bin/gitlab-runner":                                  true,
		"./gitlab-runner-linux-amd64":                             true,
		"C:/GitLab-Runner/gitlab-runner.exe":                      true,
		"gitlab/gitlab-runner:alpine-v17.9.3":                     true,
		"registry.gitlab.com/gitlab-org/gitlab-runner@sha256:abc": true,
		"gitlab-ci-multi-runner":                                  true,
		"gitlab-runner-helper":                                    false,
		"gitlab":                                                  false,
		"runner":                                                  false,
	} {
		assert.Check(t, is.Equal(isRunnerProgram(s), want), s)
	}
}

// TestExportedHostSettingsAreNotLostSilently: host-side settings exported on lines of their
// own are not part of the new command; the migration says to keep them.
func TestExportedHostSettingsAreNotLostSilently(t *testing.T) {
	m, err := ParseRegisterCommand("export RUNNER_EXECUTOR=docker DOCKER_IMAGE=alpine:3.20\nexport REGISTRATION_TOKEN=GR1348941zzzzzzzzzzzz\ngitlab-runner register --non-interactive --url https://gitlab.example.com\n")
	assert.NilError(t, err)
	w := strings.Join(m.Warnings, "\n")
	assert.Check(t, is.Contains(w, "RUNNER_EXECUTOR is set on a line of its own"))
	assert.Check(t, is.Contains(w, "DOCKER_IMAGE is set on a line of its own"))
	assert.Check(t, !strings.Contains(w+m.NewCommand("RUNNER_TOKEN"), "GR1348941zzz"))
}
