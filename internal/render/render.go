// Package render turns a runner authentication token, handed over by a deploy job from its
// environment, into the files that consumers read it from: a Kubernetes Secret for the
// gitlab-runner Helm chart's runners.secret, Helm values for --values, and a config.toml
// [[runners]] entry. These outputs are the only place this program writes a token; WriteFile
// writes them readable by their owner only.
package render

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"go.yaml.in/yaml/v3"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/safefile"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// Keys of the Secret the gitlab-runner chart mounts: it projects both without optional, so both
// must exist; the registration token is empty in the new workflow.
const (
	SecretTokenKey             = "runner-token"
	SecretRegistrationTokenKey = "runner-registration-token"
)

// FileMode is the mode of every file WriteFile writes: a token is readable by its owner only.
const FileMode fs.FileMode = 0o600

var (
	// dnsSubdomainRE is a Kubernetes object name (RFC 1123 subdomain).
	dnsSubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// dnsLabelRE is a Kubernetes namespace name (RFC 1123 label).
	dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	executorRE = regexp.MustCompile(`^[a-z][a-z0-9+_-]*$`)
)

// KubernetesSecret returns a v1 Secret manifest of type Opaque holding the token under
// runner-token (base64, no trailing newline) and an empty runner-registration-token, the two
// keys the gitlab-runner chart mounts. namespace may be empty, leaving it to kubectl -n.
func KubernetesSecret(name, namespace, token string) ([]byte, error) {
	token, err := checkToken(token)
	if err != nil {
		return nil, err
	}
	if len(name) > 253 || !dnsSubdomainRE.MatchString(name) {
		return nil, fail.Usagef("Secret name %s is not valid: expected a Kubernetes name such as gitlab-runner-secret (lowercase letters, digits, '-' and '.')", safeQuote(name))
	}
	if namespace != "" && (len(namespace) > 63 || !dnsLabelRE.MatchString(namespace)) {
		return nil, fail.Usagef("namespace %s is not valid: expected a Kubernetes namespace such as gitlab-runner (lowercase letters, digits and '-')", safeQuote(namespace))
	}
	s := secret{APIVersion: "v1", Kind: "Secret", Metadata: objectMeta{Name: name, Namespace: namespace}, Type: "Opaque"}
	s.Data.Token = base64.StdEncoding.EncodeToString([]byte(token))
	return marshalYAML(s)
}

// secret is the part of a Kubernetes v1 Secret that render writes, in the order kubectl shows it.
type secret struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Type       string     `yaml:"type"`
	Data       struct {
		// RegistrationToken is empty in the new workflow, but the chart mounts the key.
		RegistrationToken string `yaml:"runner-registration-token"`
		Token             string `yaml:"runner-token"`
	} `yaml:"data"`
}

type objectMeta struct {
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace,omitempty"`
}

// helmValues are the two chart values render sets.
type helmValues struct {
	GitlabURL   quoted `yaml:"gitlabUrl"`
	RunnerToken quoted `yaml:"runnerToken"`
}

// quoted is a string written as a double-quoted YAML scalar, so that no value (a token of
// digits, "yes", a URL with #) can be read back as anything but a string.
type quoted string

// MarshalYAML implements yaml.Marshaler.
func (q quoted) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: string(q)}, nil
}

// configTOML is the part of gitlab-runner's config.toml that render writes.
type configTOML struct {
	Runners []tomlRunner `toml:"runners"`
}

type tomlRunner struct {
	Name     string `toml:"name"`
	URL      string `toml:"url"`
	Token    string `toml:"token"`
	Executor string `toml:"executor"`
}

// marshalYAML writes v with the two-space indentation Kubernetes and Helm files use.
func marshalYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return b.Bytes(), nil
}

// HelmValues returns a values file for the gitlab-runner chart that sets gitlabUrl and
// runnerToken, to pass with helm --values next to the migrated values file.
func HelmValues(gitlabURL, token string) ([]byte, error) {
	token, err := checkToken(token)
	if err != nil {
		return nil, err
	}
	if err := checkURL(gitlabURL); err != nil {
		return nil, err
	}
	return marshalYAML(helmValues{GitlabURL: quoted(gitlabURL), RunnerToken: quoted(token)})
}

// ConfigTOMLStanza returns a [[runners]] entry for gitlab-runner's config.toml with name, url,
// token and executor, to append to a config.toml or use as a --template-config. gitlab-runner
// rotates the token itself and writes the new one only to its own config.toml.
func ConfigTOMLStanza(name, gitlabURL, token, executor string) ([]byte, error) {
	token, err := checkToken(token)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(name) == "" {
		return nil, fail.Usagef("the runner name is empty: expected a name for the [[runners]] entry, such as the host name")
	}
	if err := checkURL(gitlabURL); err != nil {
		return nil, err
	}
	if !executorRE.MatchString(executor) {
		return nil, fail.Usagef("executor %s is not valid: expected a gitlab-runner executor such as shell, docker or kubernetes", safeQuote(executor))
	}
	var b bytes.Buffer
	enc := toml.NewEncoder(&b)
	enc.SetIndentTables(true)
	if err := enc.Encode(configTOML{Runners: []tomlRunner{{Name: name, URL: gitlabURL, Token: token, Executor: executor}}}); err != nil {
		return nil, fmt.Errorf("encode TOML: %w", err)
	}
	return b.Bytes(), nil
}

// WriteFile writes data to path readable by its owner only (mode 0600), through a new file
// renamed over the target (safefile), so never through a link someone placed there, and the
// old file stays as it was if the write fails. A directory or a device is refused.
func WriteFile(path string, data []byte) error {
	return safefile.Write("--file", path, data, FileMode)
}

// checkToken accepts a runner authentication token (token.IsRunnerToken: GitLab adds
// partition, routing and instance prefixes, so the prefix may stand anywhere). Surrounding white
// space, such as the newline a file or echo leaves, is dropped. Errors name the kind, never the value.
func checkToken(tok string) (string, error) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fail.Usagef("the token is empty: expected a runner authentication token (glrt-…), for example from the CI/CD variable runner-bootstrap create wrote")
	}
	if strings.ContainsAny(tok, " \t\r\n\x00") {
		return "", fail.Usagef("the token has white space inside it: expected one runner authentication token (glrt-…) on one line")
	}
	if !token.IsRunnerToken(tok) {
		return "", fail.Usagef("the token is %s: expected a runner authentication token (glrt-…), such as the one runner-bootstrap create stores", kindOf(tok))
	}
	return tok, nil
}

// kindOf names what a value that is not a runner authentication token looks like.
func kindOf(v string) string {
	switch k := token.Classify(v); {
	case strings.HasPrefix(v, "$"):
		return "an unexpanded variable reference"
	case k == token.Unknown:
		return "not a runner authentication token"
	default:
		return string(k)
	}
}

// checkURL accepts an http(s) URL without credentials.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fail.Usagef("GitLab URL %s is not valid: expected an http(s) URL such as https://gitlab.example.com", safeQuote(raw))
	case u.User != nil:
		return fail.Usagef("the GitLab URL holds credentials (user:password@): expected the plain URL, such as https://gitlab.example.com")
	}
	return nil
}

// safeQuote quotes a user value for a message unless it looks like a token.
func safeQuote(s string) string {
	if len(token.Find(s, 0)) > 0 {
		return "(a value that looks like a token)"
	}
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strconv.Quote(s)
}
