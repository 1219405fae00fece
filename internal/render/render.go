// Package render turns a runner authentication token, handed over by a deploy job from its
// environment, into the files that consumers read it from: a Kubernetes Secret for the
// gitlab-runner Helm chart's runners.secret, Helm values for --values, and a config.toml
// [[runners]] entry. These outputs are the only place this program writes a token; WriteFile
// writes them readable by their owner only.
package render

import (
	"bytes"
	"crypto/sha256"
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
	Name string `toml:"name"`
	URL  string `toml:"url"`
	// ID is the runner's id: from gitlab-runner 19.2 the autoscaler executors key their
	// instances by URL and id, and with id 0 fall back to the token, so a token swap would
	// prune live instances.
	ID           int64          `toml:"id,omitempty"`
	Token        string         `toml:"token"`
	Executor     string         `toml:"executor"`
	FeatureFlags map[string]any `toml:"feature_flags,omitempty"`
}

// Stanza is what ConfigTOML writes.
type Stanza struct {
	Name, URL, Token, Executor string
	// RunnerID is written as id (0: left out).
	RunnerID int64
	// SystemID, when set, is named in the stanza's comment; gitlab-runner reads it from the
	// file .runner_system_id beside config.toml, not from config.toml (SystemIDFile).
	SystemID string
}

// SystemIDFile is the file in config.toml's directory from which gitlab-runner reads its
// system id (common/system_id_state.go: a value not matching SystemIDPattern is ignored and a
// new one derived from the machine id, or random, is written).
const SystemIDFile = ".runner_system_id"

// systemIDRE is the format gitlab-runner accepts in SystemIDFile.
var systemIDRE = regexp.MustCompile(`^[sr]_[0-9a-zA-Z]{12}$`)

// SystemID returns the system id for a host or replica: name itself when it already is one
// (s_ or r_ and 12 letters or digits), else s_ and 12 characters derived from name, so that
// the same host or StatefulSet pod gets the same manager entry after every restart (a pod
// without a machine id otherwise gets a random r_ id each time, and a new manager).
func SystemID(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", fail.Usagef("--system-id is empty: expected a host or pod name (for example $HOSTNAME) or a system id such as s_0123456789ab")
	}
	if systemIDRE.MatchString(name) {
		return name, nil
	}
	sum := sha256.Sum256([]byte("runner-bootstrap system id\x00" + name))
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 12)
	for i := range b {
		b[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return "s_" + string(b), nil
}

// stanzaComment says, in the file a person reads on the host, why the stanza looks as it does.
const stanzaComment = `# Written by runner-bootstrap render. The token is managed centrally: it lives in a CI/CD
# variable, runner-bootstrap rotate replaces it there, and a deploy job rewrites this stanza on
# every manager. So the stanza carries no token_expires_at (a stanza without expiry never rotates
# its token itself; one that did would write the new token only here and break every other
# manager of the runner) and FF_DISABLE_AUTOMATIC_TOKEN_ROTATION as well.
`

// ConfigTOML returns a [[runners]] entry for gitlab-runner's config.toml, to append to a
// config.toml or use as a --template-config, that never rotates its token itself.
func ConfigTOML(st Stanza) ([]byte, error) {
	tok, err := checkToken(st.Token)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(st.Name) == "" {
		return nil, fail.Usagef("the runner name is empty: expected a name for the [[runners]] entry, such as the host name")
	}
	if err := checkURL(st.URL); err != nil {
		return nil, err
	}
	if !executorRE.MatchString(st.Executor) {
		return nil, fail.Usagef("executor %s is not valid: expected a gitlab-runner executor such as shell, docker or kubernetes", safeQuote(st.Executor))
	}
	if st.RunnerID < 0 {
		return nil, fail.Usagef("runner id %d is not valid: expected the positive id GitLab gave the runner", st.RunnerID)
	}
	if st.SystemID != "" && !systemIDRE.MatchString(st.SystemID) {
		return nil, fail.Usagef("system id %s is not valid: gitlab-runner accepts s_ or r_ followed by 12 letters or digits", safeQuote(st.SystemID))
	}
	var b bytes.Buffer
	b.WriteString(stanzaComment)
	if st.SystemID != "" {
		fmt.Fprintf(&b, "# system_id %s: gitlab-runner reads it from %s beside config.toml, not from this file.\n", st.SystemID, SystemIDFile)
	}
	enc := toml.NewEncoder(&b)
	enc.SetIndentTables(true)
	r := tomlRunner{Name: st.Name, URL: st.URL, ID: st.RunnerID, Token: tok, Executor: st.Executor,
		FeatureFlags: map[string]any{"FF_DISABLE_AUTOMATIC_TOKEN_ROTATION": true}}
	if err := enc.Encode(configTOML{Runners: []tomlRunner{r}}); err != nil {
		return nil, fmt.Errorf("encode TOML: %w", err)
	}
	return b.Bytes(), nil
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

// ConfigTOMLStanza is ConfigTOML without a runner id or system id.
func ConfigTOMLStanza(name, gitlabURL, token, executor string) ([]byte, error) {
	return ConfigTOML(Stanza{Name: name, URL: gitlabURL, Token: token, Executor: executor})
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
