package migrate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/yamlnode"
)

// The fuzz targets check two promises on any input: no panic, and no token of the input in
// what is returned. "A token of the input" is any text the token pattern finds in it; for the
// migrated values file, which keeps the user's other settings as they are, it is the value of
// runnerToken and runnerRegistrationToken.

func FuzzParseHelmValues(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "helm", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"", "~", "runners: {}\n", "runners:\n", "runners:\n  locked: \"yes\"\n", "tags: [a, [b]]\n",
		"runnerToken: glrt-t3_fake_example0\nrunners:\n  secret: s\n",
		"a: &a {locked: true}\nrunners:\n  <<: [*a]\n",
		"runners: &r\n  tags: x\nother: *r\n",
		"x: &x\n  runners:\n    tags: a\n<<: *x\n",
		"runnerRegistrationToken: &t GR1348941fake_example0\nrunners:\n  name: *t\n",
		"%YAML 1.2\n---\nrunners:\n  tags: a\n",
		"runners:\n  tags: |\n    a,\n    b\n  # trailing\nnext: 1\n",
		"runners:\n- tags: a\n",
		"\ufeffrunners:\n  tags: a\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<15 {
			return
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second): // a hang becomes a crash that names its input
				panic(fmt.Sprintf("WATCHDOG slow input %q", data))
			}
		}()
		tokens := plantedTokenRE.FindAllString(string(data), -1)
		noToken := func(what, s string) {
			t.Helper()
			for _, tok := range tokens {
				if strings.Contains(s, tok) {
					t.Fatalf("%s holds the input's token %q:\n%s", what, tok, s)
				}
			}
		}
		m, err := ParseHelmValues(data)
		if err != nil {
			noToken("the error", err.Error())
			return
		}
		parsed, err := json.Marshal(struct {
			*HelmMigration
			R any
		}{m, m.Runner()})
		if err != nil {
			t.Fatal(err)
		}
		noToken("the parsed settings", string(parsed))
		r := m.Runner()
		fields := append([]string{m.GitLabURL, m.SecretName, r.Description, r.MaintenanceNote}, r.TagList...)
		fields = append(fields, m.Warnings...)
		for _, s := range tokenValues(data) {
			for _, field := range fields {
				if strings.Contains(field, s) {
					t.Fatalf("the parsed settings hold the token %q in %q", s, field)
				}
			}
		}

		// The migrated file keeps the user's other settings, so a token value written elsewhere
		// too stays there; one written only under a token key must go.
		var secrets []string
		for _, s := range tokenValues(data) {
			if strings.Count(string(data), s) == 1 {
				secrets = append(secrets, s)
			}
		}
		for _, opts := range []RewriteOptions{{}, {SecretName: "runner-secret", VariableKey: "K"}} {
			out, err := m.Rewrite(opts)
			if err != nil {
				noToken("the rewrite error", err.Error())
				continue
			}
			for _, s := range secrets {
				if strings.Contains(string(out), s) {
					t.Fatalf("the migrated file holds the token %q:\n%s", s, out)
				}
			}
			noToken("the diff", Diff(data, out))

			again, err := ParseHelmValues(out)
			if err != nil {
				t.Fatalf("the migrated file does not parse: %v\n%s", err, out)
			}
			if len(again.LegacyKeys) > 0 {
				t.Fatalf("the migrated file still has %v:\n%s", again.LegacyKeys, out)
			}
			twice, err := again.Rewrite(opts)
			if err != nil {
				t.Fatalf("rewriting the migrated file fails: %v\n%s", err, out)
			}
			if string(twice) != string(out) {
				t.Fatalf("rewrite is not idempotent:\n%s\n-----\n%s", out, twice)
			}
		}
	})
}

// tokenValues returns the literal values of runnerToken and runnerRegistrationToken long
// enough to be tokens.
func tokenValues(data []byte) []string {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for _, key := range []string{keyRunnerToken, keyRegistrationToken} {
		for _, p := range yamlnode.Pairs(doc.Content[0], key) {
			v := yamlnode.Resolve(p.Value)
			if v == nil || v.Kind != yaml.ScalarNode || len(v.Value) < minSecretLen || isPlaceholder(v.Value) {
				continue
			}
			out = append(out, v.Value)
		}
	}
	return out
}

func FuzzParseRegisterCommand(f *testing.F) {
	for _, c := range registerCases {
		f.Add(c.cmdline)
	}
	for _, s := range []string{
		"", "gitlab-runner register", "gitlab-runner register --locked", "gitlab-runner register -- --url x",
		`gitlab-runner register --url "$(echo ")")" -r 'a'"b"\c`, "gitlab-runner register --env=`x`",
		"docker run -e REGISTRATION_TOKEN gitlab/gitlab-runner register -r GR1348941fake_example0",
		"gitlab-runner register -r oldStyleToken123456 --description oldStyleToken123456",
		"gitlab-runner register --url=https://u:glpat-fake_example0@x",
		"export -n X\nREGISTRATION_TOKEN=x gitlab-runner register",
		"gitlab-runner register --locked maybe --paused 1 --run-untagged=F",
		"gitlab-runner register ${A:-$(b)} #c\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmdline string) {
		if len(cmdline) > 1<<14 {
			return
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second): // a hang becomes a crash that names its input
				panic(fmt.Sprintf("WATCHDOG slow input %q", cmdline))
			}
		}()
		tokens := plantedTokenRE.FindAllString(cmdline, -1)
		noToken := func(what, s string) {
			t.Helper()
			for _, tok := range tokens {
				if strings.Contains(s, tok) {
					t.Fatalf("%s holds the input's token %q:\n%s", what, tok, s)
				}
			}
		}
		m, err := ParseRegisterCommand(cmdline)
		if err != nil {
			noToken("the error", err.Error())
			return
		}
		out, err := json.Marshal(struct {
			*RegisterMigration
			R   any
			URL string
		}{m, m.Runner(), m.URL()})
		if err != nil {
			t.Fatal(err)
		}
		cmd := m.NewCommand("")
		noToken("the parsed command", string(out))
		noToken("the new command", cmd)
		noToken("the new command", m.NewCommand("X Y"))
		// A token without a known prefix is found by its value, in what came from the input.
		r := m.Runner()
		fields := append([]string{m.URL(), r.Description, r.MaintenanceNote}, r.TagList...)
		fields = append(fields, m.KeptArgs...)
		fields = append(fields, m.Warnings...)
		for _, w := range append(append([]word{}, m.launch...), m.globals...) {
			fields = append(fields, m.clean(w).String())
		}
		for _, s := range m.secrets {
			for _, field := range fields {
				if len(s.value) >= minSecretLen && strings.Contains(field, s.value) {
					t.Fatalf("the parsed command holds the old token %q in %q", s.value, field)
				}
			}
		}

		// The new command reads back as what it was made from.
		back, err := ParseRegisterCommand(cmd)
		if err != nil {
			t.Fatalf("the new command does not parse: %v\n%s", err, cmd)
		}
		if a, b := strings.Join(back.KeptArgs, "\x00"), strings.Join(m.KeptArgs, "\x00"); a != b {
			t.Fatalf("the new command keeps %q instead of %q:\n%s", back.KeptArgs, m.KeptArgs, cmd)
		}
		if back.URL() != m.URL() {
			t.Fatalf("the new command has URL %q instead of %q:\n%s", back.URL(), m.URL(), cmd)
		}
	})
}
