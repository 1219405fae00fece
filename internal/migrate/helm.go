package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/yamlnode"
)

// Keys of the gitlab-runner chart's values file.
const (
	keyRunners           = "runners"
	keyGitLabURL         = "gitlabUrl"
	keyRunnerToken       = "runnerToken"
	keyRegistrationToken = "runnerRegistrationToken"
	keySecret            = "secret"
	keyName              = "name"
)

// legacyKeys are the runner attributes the chart used to pass to a registration. The chart reads
// them under runners:; GitLab's migration page lists them at the top level. Both are handled.
var legacyKeys = []string{"tags", "locked", "runUntagged", "protected", "maximumTimeout"}

// DefaultValuesName is the file name errors use when the caller gives none.
const DefaultValuesName = "values.yaml"

// KeyRef names a key of the values file and the line it is on.
type KeyRef struct {
	Path string `json:"path"`
	Line int    `json:"line"`
}

// HelmMigration is what a gitlab-runner Helm chart values file asks for, read for a migration
// to the new runner registration workflow. It never holds a token: only whether one was set.
type HelmMigration struct {
	// File is the name used in messages (the path given to ParseHelmValuesNamed).
	File string `json:"file"`
	// GitLabURL is gitlabUrl, empty when the file has none.
	GitLabURL string `json:"gitlab_url,omitempty"`
	// RunnerTokenSet says runnerToken holds a value (a token or a placeholder such as ${RUNNER_TOKEN}).
	RunnerTokenSet bool `json:"runner_token_set"`
	// RegistrationTokenSet says runnerRegistrationToken holds a value.
	RegistrationTokenSet bool `json:"registration_token_set"`
	// SecretName is runners.secret: an existing Secret the chart reads the tokens from, or empty.
	SecretName string `json:"secret_name,omitempty"`
	// LegacyKeys lists every legacy key found (runnerRegistrationToken and the runner attributes),
	// in file order; Rewrite removes them all.
	LegacyKeys []KeyRef `json:"legacy_keys,omitempty"`
	// Warnings are what the user should know before migrating, one sentence each, never a token.
	Warnings []string `json:"warnings,omitempty"`

	runner  spec.Runner
	data    []byte
	secrets []secretValue
}

// Diff is the line diff from the original file to migrated, with every token value found in
// the file hidden wherever it shows, also where no key or prefix gives it away (a value on the
// next line, a block scalar, a flow mapping).
func (m *HelmMigration) Diff(migrated []byte) string {
	return scrubSecrets(Diff(m.data, migrated), m.secrets)
}

// UsesSecret reports whether the chart reads its tokens from an existing Secret (runners.secret).
func (m *HelmMigration) UsesSecret() bool { return m.SecretName != "" }

// Runner returns the runner attributes the values file asked for, with the defaults the chart and
// gitlab-runner applied to a legacy registration: locked unless runners.locked is false, and
// untagged jobs run when there are no tags. Type, owner and (when runners.name is absent) the
// description are left for the caller to fill from flags.
func (m *HelmMigration) Runner() spec.Runner {
	r := m.runner
	r.TagList = append([]string(nil), r.TagList...)
	return r
}

// ParseHelmValues reads a gitlab-runner Helm chart values file; messages name it values.yaml.
func ParseHelmValues(data []byte) (*HelmMigration, error) {
	return ParseHelmValuesNamed(DefaultValuesName, data)
}

// ParseHelmValuesNamed reads a gitlab-runner Helm chart values file; messages name it name
// (the path the user gave), as in "values.yaml:12: runners.locked is "yes": expected true or false".
// Errors are fail.Usagef errors and never contain a token.
func ParseHelmValuesNamed(name string, data []byte) (*HelmMigration, error) {
	v, err := load(name, data)
	if err != nil {
		return nil, err
	}
	m := &HelmMigration{File: name, data: append([]byte(nil), data...)}
	if err := m.read(v); err != nil {
		return nil, err
	}
	return m, nil
}

// values is a parsed values file.
type values struct {
	name string
	doc  *yaml.Node // the DocumentNode; nil for a file with no document (empty or only comments)
	root *yaml.Node // the top-level mapping; nil when the file sets nothing
}

// load parses data as one YAML document whose top level is a mapping (or nothing).
func load(name string, data []byte) (v *values, err error) {
	defer func() {
		// The YAML parser is not ours; a panic on a malformed file must stay a usage error.
		if r := recover(); r != nil {
			v, err = nil, fail.Usagef("%s is not valid YAML: expected a gitlab-runner chart values file", name)
		}
	}()
	v = &values{name: name}
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		return nil, fail.Usagef("%s is encoded in UTF-16: expected a UTF-8 values file", name)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return v, nil
	case err != nil:
		return nil, fail.Usagef("%s is not valid YAML (%s): expected a gitlab-runner chart values file", name, yamlReason(err))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, fail.Usagef("%s holds more than one YAML document: expected one document of chart values", name)
	}
	v.doc = &doc
	if len(doc.Content) == 0 {
		return v, nil
	}
	top := doc.Content[0]
	switch {
	case top.Kind == yaml.MappingNode:
		v.root = top
	case isNull(top):
	default:
		return nil, fail.Usagef("%s:%d: the file is %s: expected a mapping of chart values such as gitlabUrl: https://gitlab.com", name, top.Line, describe(top))
	}
	return v, nil
}

// yamlReason is the parser's message without its "yaml: " prefix, with any token hidden.
func yamlReason(err error) string {
	return scrub(strings.TrimPrefix(err.Error(), "yaml: "))
}

// read fills m from v.
func (m *HelmMigration) read(v *values) error {
	if v.root == nil {
		m.runner = spec.Runner{RunUntagged: true, Locked: true}
		return nil
	}
	if err := v.checkDuplicates(v.root, ""); err != nil {
		return err
	}
	var runners *yaml.Node
	if ps := yamlnode.Pairs(v.root, keyRunners); len(ps) > 0 {
		rv := yamlnode.Resolve(ps[0].Value)
		switch {
		case rv == nil || isNull(rv):
		case rv.Kind == yaml.MappingNode:
			runners = rv
			if err := v.checkDuplicates(runners, keyRunners+"."); err != nil {
				return err
			}
		default:
			return v.errorf(ps[0].Key, "runners is %s: expected a mapping of runner settings", describe(rv))
		}
	}

	var err error
	if m.GitLabURL, err = v.str(v.root, "", keyGitLabURL, "a URL such as https://gitlab.example.com"); err != nil {
		return err
	}
	if m.SecretName, err = v.str(runners, keyRunners+".", keySecret, "the name of a Secret"); err != nil {
		return err
	}
	description, err := v.str(runners, keyRunners+".", keyName, "a runner description")
	if err != nil {
		return err
	}
	runnerToken, err := v.str(v.root, "", keyRunnerToken, "a runner authentication token")
	if err != nil {
		return err
	}
	registrationToken, err := v.str(v.root, "", keyRegistrationToken, "a registration token")
	if err != nil {
		return err
	}
	m.RunnerTokenSet = runnerToken != ""
	m.RegistrationTokenSet = registrationToken != ""

	// The legacy attributes, from either place; both set must agree.
	got := map[string]any{}
	var atTop []string
	for _, key := range legacyKeys {
		top, err := v.legacy(v.root, "", key)
		if err != nil {
			return err
		}
		under, err := v.legacy(runners, keyRunners+".", key)
		if err != nil {
			return err
		}
		if top != nil {
			atTop = append(atTop, key)
		}
		switch {
		case top != nil && under != nil && !reflect.DeepEqual(top.value, under.value):
			return fail.Usagef("%s:%d: runners.%s is %s but %s on line %d is %s: set it in one place only (the chart reads runners.%s)",
				v.name, under.line, key, under.shown, key, top.line, top.shown, key)
		case under != nil:
			got[key] = under.value
		case top != nil:
			got[key] = top.value
		}
	}

	// Token values without a known prefix are hidden by value wherever else they appear.
	var secrets []secretValue
	for _, sv := range []secretValue{{runnerToken, "runner authentication token"}, {registrationToken, "registration token"}} {
		if sv.value != "" && !isPlaceholder(sv.value) {
			if k := firstTokenKind(sv.value); k != "" {
				sv.kind = k
			}
			secrets = append(secrets, sv)
		}
	}
	m.secrets = secrets
	clean := func(s string) string { return scrubSecrets(s, secrets) }

	r := spec.Runner{Description: clean(description), Locked: true}
	if tags, ok := got["tags"].([]string); ok {
		for _, t := range tags {
			r.TagList = append(r.TagList, clean(t))
		}
	}
	if b, ok := got["locked"].(bool); ok {
		r.Locked = b
	}
	runUntagged, runUntaggedSet := got["runUntagged"].(bool)
	// gitlab-runner runs untagged jobs whenever a runner has no tags, whatever runUntagged says.
	r.RunUntagged = runUntagged || len(r.TagList) == 0
	if b, ok := got["protected"].(bool); ok {
		r.AccessLevel = spec.NotProtected
		if b {
			r.AccessLevel = spec.RefProtected
		}
	}
	if n, ok := got["maximumTimeout"].(int64); ok {
		r.MaximumTimeout = n
	}
	m.runner = r
	m.GitLabURL = clean(m.GitLabURL)
	m.SecretName = clean(m.SecretName)

	// Every legacy key, wherever it physically is (merge keys included), for the user and Rewrite.
	for _, key := range append([]string{keyRegistrationToken}, legacyKeys...) {
		for _, p := range yamlnode.Pairs(v.root, key) {
			m.LegacyKeys = append(m.LegacyKeys, KeyRef{Path: key, Line: p.Key.Line})
		}
		if runners != nil && key != keyRegistrationToken {
			for _, p := range yamlnode.Pairs(runners, key) {
				m.LegacyKeys = append(m.LegacyKeys, KeyRef{Path: keyRunners + "." + key, Line: p.Key.Line})
			}
		}
	}
	sort.SliceStable(m.LegacyKeys, func(i, j int) bool { return m.LegacyKeys[i].Line < m.LegacyKeys[j].Line })

	m.warn(v, runners, atTop, runUntaggedSet && !runUntagged, runnerToken, registrationToken)
	for i, w := range m.Warnings {
		m.Warnings[i] = clean(w)
	}
	return nil
}

// warn collects what the user should know; the order is stable so outputs can be golden-tested.
func (m *HelmMigration) warn(v *values, runners *yaml.Node, atTop []string, untaggedOff bool, runnerToken, registrationToken string) {
	if len(atTop) > 0 {
		under := make([]string, len(atTop))
		for i, k := range atTop {
			under[i] = keyRunners + "." + k
		}
		m.Warnings = append(m.Warnings, fmt.Sprintf(
			"%s %s at the top level, where the gitlab-runner chart does not read %s (it reads %s): the migration takes %s as the intended settings",
			strings.Join(atTop, ", "), isAre(len(atTop)), itThem(len(atTop)), strings.Join(under, ", "), itThem(len(atTop))))
	}
	if p := yamlnode.Pairs(runners, "tags"); len(p) > 0 && yamlnode.Resolve(p[0].Value).Kind == yaml.SequenceNode {
		m.Warnings = append(m.Warnings, "runners.tags is a YAML list while the chart passes tags on as one string, so the legacy registration may not have had these tags: check them")
	}
	if untaggedOff && len(m.runner.TagList) == 0 {
		m.Warnings = append(m.Warnings, "runUntagged is false but there are no tags: a runner without tags always runs untagged jobs, so the new runner will too")
	}
	if len(yamlnode.Pairs(runners, "maximumTimeout")) > 0 {
		w := "runners.maximumTimeout next to a runner authentication token makes gitlab-runner refuse to register (the chart still passes it): the migrated file drops it and the timeout moves to the runner in GitLab"
		if m.RunnerTokenSet {
			w = "runners.maximumTimeout next to a runner authentication token makes gitlab-runner refuse to register, and runnerToken is already set: this deployment cannot register until the key is gone"
		}
		m.Warnings = append(m.Warnings, w)
	}
	switch {
	case registrationToken == "" || isPlaceholder(registrationToken):
	case token.IsRunnerToken(registrationToken):
		m.Warnings = append(m.Warnings, "runnerRegistrationToken holds a runner authentication token in plain text: the migrated file drops it, and the token should be rotated (runner-bootstrap rotate) since it stays in this file's history")
	default:
		m.Warnings = append(m.Warnings, "runnerRegistrationToken holds a registration token in plain text: reset the registration token in GitLab once every runner is migrated, since it stays in this file's history")
	}
	switch {
	case runnerToken == "":
	case isPlaceholder(runnerToken):
		m.Warnings = append(m.Warnings, "runnerToken is a placeholder filled by your deploy step: the migrated file keeps it, so make sure it is filled from the CI/CD variable that runner-bootstrap writes")
	default:
		kind := firstTokenKind(runnerToken)
		if kind == "" {
			kind = "token"
		}
		m.Warnings = append(m.Warnings, fmt.Sprintf("runnerToken holds a %s in plain text: the migrated file drops it (the deploy job passes the token instead), and it should be rotated since it stays in this file's history", kind))
	}
	if m.SecretName != "" {
		m.Warnings = append(m.Warnings, fmt.Sprintf(
			"runners.secret names the Secret %s: it must hold the runner authentication token under runner-token and an empty runner-registration-token (the pods mount both), and the pods must be restarted after each rotation since the chart does not roll them when that Secret changes",
			show(m.SecretName)))
	}
	m.Warnings = append(m.Warnings, strayTokens(v)...)
}

// strayTokens warns about tokens written anywhere in the file but runnerToken and
// runnerRegistrationToken (which have their own warnings).
func strayTokens(v *values) []string {
	var out []string
	skip := map[*yaml.Node]bool{}
	for _, key := range []string{keyRunnerToken, keyRegistrationToken} {
		for _, p := range yamlnode.Pairs(v.root, key) {
			skip[p.Value] = true
		}
	}
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		if n == nil || skip[n] || depth > 64 {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			if k := firstTokenKind(n.Value); k != "" {
				out = append(out, fmt.Sprintf("%s:%d: %s holds a %s in plain text: the migrated file drops it (move it to a Kubernetes Secret or a CI/CD variable, and rotate it since it stays in this file's history)", v.name, n.Line, scrub(strings.TrimPrefix(path, ".")), k))
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				walk(k, path+".(key)", depth+1)
				walk(n.Content[i+1], path+"."+k.Value, depth+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			}
		}
	}
	walk(v.root, "", 0)
	return out
}

// strayTokenPairs are the mapping pairs, other than runnerToken and runnerRegistrationToken,
// whose value is one line holding a token: Rewrite drops them. A token anywhere else (a list,
// a key, a multi-line value such as runners.config) makes Rewrite refuse instead, since
// dropping the whole value would change what the chart deploys.
func strayTokenPairs(v *values) []yamlnode.Pair {
	var out []yamlnode.Pair
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if n == nil || depth > 64 {
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, val := n.Content[i], n.Content[i+1]
				if val.Kind == yaml.ScalarNode && !strings.Contains(val.Value, "\n") && hasToken(val.Value) &&
					k.Value != keyRunnerToken && k.Value != keyRegistrationToken {
					out = append(out, yamlnode.Pair{Key: k, Value: val, Parent: n})
					continue
				}
				walk(val, depth+1)
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, depth+1)
			}
		}
	}
	walk(v.root, 0)
	return out
}

// isNull reports a value that sets nothing: null, ~, an empty value or an empty string
// (GitLab's migration page writes unset settings as "").
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || (n.Tag == "!!str" && n.Value == ""))
}

// isPlaceholder reports a value filled in by a deploy step rather than a literal token.
func isPlaceholder(s string) bool { return strings.Contains(s, "$") || strings.Contains(s, "{{") }

// describe says what kind of YAML value n is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!str" {
			return "the string " + show(n.Value)
		}
		return show(n.Value)
	}
	return "an unknown YAML value"
}

// checkDuplicates refuses a key written twice in one mapping: which one wins depends on the parser.
func (v *values) checkDuplicates(m *yaml.Node, prefix string) error {
	first := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind != yaml.ScalarNode || yamlnode.IsMerge(k) {
			continue
		}
		if line, ok := first[k.Value]; ok {
			return v.errorf(k, "%s%s is set twice (first on line %d): expected one value", prefix, scrub(k.Value), line)
		}
		first[k.Value] = k.Line
	}
	return nil
}

func (v *values) errorf(at *yaml.Node, format string, args ...any) error {
	return fail.Usagef("%s:%d: %s", v.name, at.Line, fmt.Sprintf(format, args...))
}

// str reads an optional string setting of mapping m; null and "" read as "".
func (v *values) str(m *yaml.Node, prefix, key, want string) (string, error) {
	ps := yamlnode.Pairs(m, key)
	if len(ps) == 0 {
		return "", nil
	}
	val := yamlnode.Resolve(ps[0].Value)
	switch {
	case val == nil || isNull(val):
		return "", nil
	case val.Kind != yaml.ScalarNode:
		return "", v.errorf(ps[0].Key, "%s%s is %s: expected %s", prefix, key, describe(val), want)
	}
	return val.Value, nil
}

// legacyValue is one legacy setting read from the file.
type legacyValue struct {
	value any    // []string, bool or int64
	shown string // the value as written, for messages
	line  int
}

// legacy reads legacy key from mapping m; nil when absent or unset.
func (v *values) legacy(m *yaml.Node, prefix, key string) (*legacyValue, error) {
	ps := yamlnode.Pairs(m, key)
	if len(ps) == 0 {
		return nil, nil
	}
	k, val := ps[0].Key, yamlnode.Resolve(ps[0].Value)
	if val == nil || isNull(val) {
		return nil, nil
	}
	path := prefix + key
	lv := &legacyValue{line: k.Line, shown: describe(val)}
	if val.Kind == yaml.ScalarNode {
		lv.shown = show(val.Value)
	}
	switch key {
	case "tags":
		tags, err := v.tags(k, path, val)
		if err != nil {
			return nil, err
		}
		lv.value, lv.shown = tags, show(strings.Join(tags, ","))
	case "maximumTimeout":
		n, err := v.seconds(k, path, val)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, nil
		}
		lv.value = n
	default:
		b, err := v.boolean(k, path, val)
		if err != nil {
			return nil, err
		}
		lv.value = b
	}
	return lv, nil
}

// tags reads a comma-separated string or a list of strings; empty entries are dropped.
func (v *values) tags(k *yaml.Node, path string, val *yaml.Node) ([]string, error) {
	var raw []string
	switch val.Kind {
	case yaml.ScalarNode:
		raw = []string{val.Value}
	case yaml.SequenceNode:
		for _, item := range val.Content {
			item = yamlnode.Resolve(item)
			if item == nil || item.Kind != yaml.ScalarNode {
				return nil, v.errorf(k, "%s has an entry that is %s: expected tag names such as docker", path, describe(item))
			}
			raw = append(raw, item.Value)
		}
	default:
		return nil, v.errorf(k, "%s is %s: expected a comma-separated string such as \"docker,linux\" or a list", path, describe(val))
	}
	var tags []string
	for _, s := range raw {
		for t := range strings.SplitSeq(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return tags, nil
}

// boolean reads true or false. Unquoted yes/no/on/off are accepted because Helm reads values
// as YAML 1.1, where they are booleans; a quoted "false" is refused because Helm passes it on
// as a string, which the chart's templates take as true.
func (v *values) boolean(k *yaml.Node, path string, val *yaml.Node) (bool, error) {
	if val.Kind != yaml.ScalarNode {
		return false, v.errorf(k, "%s is %s: expected true or false", path, describe(val))
	}
	quoted := val.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
	if quoted || val.Tag == "!!str" && val.Style != 0 {
		if _, err := strconv.ParseBool(val.Value); err == nil {
			return false, v.errorf(k, "%s is the string %s: expected true or false without quotes (the chart takes any non-empty string as true)", path, show(val.Value))
		}
		return false, v.errorf(k, "%s is %s: expected true or false", path, show(val.Value))
	}
	var b bool
	if err := val.Decode(&b); err != nil {
		return false, v.errorf(k, "%s is %s: expected true or false", path, show(val.Value))
	}
	return b, nil
}

// seconds reads a number of seconds, written as a number or a numeric string.
func (v *values) seconds(k *yaml.Node, path string, val *yaml.Node) (int64, error) {
	if val.Kind == yaml.ScalarNode && (val.Tag == "!!int" || val.Tag == "!!str") {
		n, err := strconv.ParseInt(strings.TrimSpace(val.Value), 10, 64)
		if err == nil && n >= 0 {
			return n, nil
		}
		if val.Tag == "!!int" { // 0x10, 0o17 and friends: YAML integers, but not what the chart passes on
			var i int64
			if val.Decode(&i) == nil && i >= 0 {
				return 0, v.errorf(k, "%s is %s: expected a plain number of seconds such as 3600", path, show(val.Value))
			}
		}
	}
	return 0, v.errorf(k, "%s is %s: expected a number of seconds such as 3600", path, describeValue(val))
}

func describeValue(val *yaml.Node) string {
	if val.Kind == yaml.ScalarNode {
		return show(val.Value)
	}
	return describe(val)
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func itThem(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}
