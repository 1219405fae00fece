// Package fleet applies a manifest of many runners at once: it parses and validates the whole
// manifest first (every error with file:line), splits it into shards for parallel CI jobs, reads
// GitLab in bulk (one paginated list of variables and of runners per owner), computes a plan with
// lifecycle.Decide over the states observed from those reads, and applies it with
// lifecycle.Execute under bounded concurrency.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/readlimit"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/yamlnode"
)

// Manifest is a validated fleet manifest.
type Manifest struct {
	// File is the manifest's name as the user gave it; every message starts with it.
	File    string
	Entries []Entry
}

// Entry is one item of the manifest's runners: list.
type Entry struct {
	// Index is the item's position in runners:, from 0 (as in "runners[3]").
	Index int
	// Line is the line of the item; VariableLine that of its variable: key (or Line).
	Line, VariableLine int
	// Spec has the documented defaults applied and the variable's owner defaulted.
	Spec spec.Spec
	// Label names an entry that comes from flags, not a file (see FromSpec).
	Label string
}

// Name is how messages refer to the entry: "runners[3]", or its label.
func (e Entry) Name() string {
	if e.Label != "" {
		return e.Label
	}
	return fmt.Sprintf("runners[%d]", e.Index)
}

// FromSpec is a manifest of one entry made from a command's flags, so that create --dry-run
// is planned, and printed, exactly as apply --dry-run plans a manifest. label names the entry
// in the plan ("create"). The spec must be valid (spec.Validate).
func FromSpec(label string, s spec.Spec) *Manifest {
	return &Manifest{Entries: []Entry{{Label: label, Spec: s}}}
}

// key names the entry's variable as written (paths compared without case, as GitLab looks
// them up): duplicates are found and shards assigned with it before anything is resolved.
func (e Entry) key() string {
	v := e.Spec.Variable
	if v.Owner == spec.OwnerInstance {
		return "instance/" + v.Key
	}
	return fmt.Sprintf("%s:%s/%s@%s", v.Owner, strings.ToLower(v.OwnerRef), v.Key, v.EnvironmentScope)
}

// ownerKey names the entry's variable owner as written (paths without case): the entries of
// one owner go to one shard.
func (e Entry) ownerKey() string {
	v := e.Spec.Variable
	if v.Owner == spec.OwnerInstance {
		return "instance"
	}
	return fmt.Sprintf("%s:%s", v.Owner, strings.ToLower(v.OwnerRef))
}

// describeVariable names the entry's variable for people: "project platform/deploy variable
// RUNNER_TOKEN (scope *)".
func describeVariable(v spec.Variable) string {
	if v.Owner == spec.OwnerInstance {
		return "instance variable " + v.Key
	}
	return fmt.Sprintf("%s %s variable %s (scope %s)", v.Owner, v.OwnerRef, v.Key, v.EnvironmentScope)
}

// Keys of a manifest. They mirror the create flags (--tag-list → tag_list).
var (
	topKeys    = []string{"runners"}
	runnerKeys = []string{"runner_type", "project_id", "group_id", "description", "tag_list", "run_untagged",
		"locked", "access_level", "maximum_timeout", "paused", "maintenance_note", "token_expires_in", "token_rotation_deadline_in", "variable"}
	variableKeys = []string{"key", "project", "group", "instance", "environment_scope", "protected", "hidden", "variable_type"}
)

// maxReported bounds the errors listed for one manifest; the count says how many there were.
const maxReported = 25

// Load reads and validates a manifest file ("-": stdin), at most readlimit.Manifest bytes; ctx
// interrupts a read that blocks.
func Load(ctx context.Context, path string, stdin io.Reader) (*Manifest, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = readlimit.Read(ctx, "the manifest from stdin", stdin, readlimit.Manifest)
	} else {
		data, err = readlimit.ReadFile(ctx, "the manifest", path, readlimit.Manifest)
	}
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse validates a manifest. Every problem is reported, each as "file:line: what is wrong:
// what is expected", and the error has exit code 2: nothing has been sent to GitLab yet.
func Parse(file string, data []byte) (*Manifest, error) {
	d := &decoder{file: file}
	m := &Manifest{File: file}
	root := d.document(data)
	if root != nil {
		if top, ok := d.fields("", root, topKeys); ok {
			if kv, ok := top["runners"]; ok {
				m.Entries = d.runners(kv.value)
			} else {
				d.errorf(root, "the manifest has no runners: list: expected runners: with one item per runner")
			}
		}
	}
	d.duplicates(m.Entries)
	if err := d.err(); err != nil {
		return nil, err
	}
	return m, nil
}

// fieldError is one problem at one line.
type fieldError struct {
	line int
	msg  string
}

type decoder struct {
	file string
	errs []fieldError
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, fieldError{line: line, msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].line < d.errs[j].line })
	lines := make([]string, 0, len(d.errs))
	for i, e := range d.errs {
		if i == maxReported {
			lines = append(lines, fmt.Sprintf("… and %d more", len(d.errs)-maxReported))
			break
		}
		if e.line > 0 {
			lines = append(lines, fmt.Sprintf("%s:%d: %s", d.file, e.line, e.msg))
		} else {
			lines = append(lines, fmt.Sprintf("%s: %s", d.file, e.msg))
		}
	}
	if len(d.errs) == 1 {
		return fail.Usagef("%s", lines[0])
	}
	return fail.Usagef("%s has %d errors; nothing was changed:\n%s", d.file, len(d.errs), strings.Join(lines, "\n"))
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses the YAML and returns the root mapping, or nil after reporting why not.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorf(nil, "the manifest is empty: expected a runners: list")
			return nil
		}
		d.syntax(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "a second YAML document starts here: a manifest is one document")
	} else if !errors.Is(err, io.EOF) {
		d.syntax(err)
	}
	if len(doc.Content) == 0 {
		d.errorf(nil, "the manifest is empty: expected a runners: list")
		return nil
	}
	root := yamlnode.Resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "the manifest is %s: expected a mapping with a runners: list", describeNode(root))
		return nil
	}
	return root
}

func (d *decoder) syntax(err error) {
	msg := err.Error()
	for l := range strings.SplitSeq(msg, "\n") {
		l = strings.TrimSpace(l)
		if m := yamlLineRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			d.errs = append(d.errs, fieldError{line: n, msg: "invalid YAML: " + m[2]})
		} else if l != "" && l != "yaml: unmarshal errors:" {
			d.errs = append(d.errs, fieldError{msg: "invalid YAML: " + strings.TrimPrefix(l, "yaml: ")})
		}
	}
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "empty"
	case "!!str":
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// kv is one key of a mapping, with the nodes for messages.
type kv struct {
	key, value *yaml.Node
}

// fields reads a mapping's keys, following merge keys (<<: *defaults; explicit keys win),
// and reports unknown and repeated keys. path prefixes messages ("runners[3].").
func (d *decoder) fields(path string, n *yaml.Node, known []string) (map[string]kv, bool) {
	n = yamlnode.Resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s is %s: expected a mapping of %s", strings.TrimSuffix(path, "."), describeNode(n), strings.Join(known, ", "))
		return nil, false
	}
	out := map[string]kv{}
	var merged []map[string]kv
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if yamlnode.IsMerge(k) {
			for _, src := range yamlnode.MergeSources(v) {
				if m, ok := d.fields(path, src, known); ok {
					merged = append(merged, m)
				}
			}
			continue
		}
		name := k.Value
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%sa key is %s: expected one of %s", path, describeNode(k), strings.Join(known, ", "))
			continue
		}
		if path == "" && strings.HasPrefix(name, ".") {
			// Top-level keys starting with a dot are ignored, as hidden jobs are in
			// .gitlab-ci.yml: a place for anchors (&defaults) that entries merge (<<: *defaults).
			continue
		}
		if !contains(known, name) {
			hint := ""
			if s := suggest(name, known); s != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", s)
			}
			d.errorf(k, "%s%s is not a known key%s: expected one of %s", path, name, hint, strings.Join(known, ", "))
			continue
		}
		if prev, ok := out[name]; ok {
			d.errorf(k, "%s%s is given twice (first on line %d): keep one", path, name, prev.key.Line)
			continue
		}
		out[name] = kv{key: k, value: v}
	}
	// Earlier merge sources win over later ones, as in YAML's merge key.
	for _, m := range merged {
		for name, f := range m {
			if _, ok := out[name]; !ok {
				out[name] = f
			}
		}
	}
	return out, true
}

func contains(list []string, s string) bool {
	return slices.Contains(list, s)
}

// suggest returns the known key closest to name, if it is close: a typo, a flag spelling
// (tag-list) or a shortened name (tags).
func suggest(name string, known []string) string {
	norm := strings.ReplaceAll(strings.TrimLeft(strings.ToLower(name), "-"), "-", "_")
	best, bestDist := "", 3
	for _, k := range known {
		if norm == k || strings.TrimPrefix(norm, "variable_") == k {
			return k
		}
		stem := strings.TrimSuffix(norm, "s")
		if len(stem) >= 3 && (strings.HasPrefix(k, stem) || strings.HasPrefix(norm, k) || strings.HasSuffix(k, "_"+norm)) {
			return k
		}
		if dist := levenshtein(norm, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func (d *decoder) runners(n *yaml.Node) []Entry {
	n = yamlnode.Resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "runners is %s: expected a list with one item per runner", describeNode(n))
		return nil
	}
	if len(n.Content) == 0 {
		d.errorf(n, "runners is an empty list: list at least one runner")
		return nil
	}
	var out []Entry
	for i, item := range n.Content {
		if e, ok := d.entry(i, yamlnode.Resolve(item)); ok {
			out = append(out, e)
		}
	}
	return out
}

// entry reads and validates one runner. Checks are made field by field, so that each message
// points at its line; spec.Validate then runs as the last word.
func (d *decoder) entry(i int, n *yaml.Node) (Entry, bool) {
	e := Entry{Index: i, Line: n.Line, VariableLine: n.Line, Spec: spec.New()}
	p := e.Name() + "."
	f, ok := d.fields(p, n, runnerKeys)
	if !ok {
		return e, false
	}
	before := len(d.errs)
	r := &e.Spec.Runner
	if x, ok := f["runner_type"]; ok {
		if s, ok := d.enum(p, "runner_type", x, string(spec.InstanceType), string(spec.GroupType), string(spec.ProjectType)); ok {
			r.Type = spec.RunnerType(s)
		}
	}
	if x, ok := f["project_id"]; ok {
		r.ProjectRef, _ = d.ref(p+"project_id", x)
	}
	if x, ok := f["group_id"]; ok {
		r.GroupRef, _ = d.ref(p+"group_id", x)
	}
	if x, ok := f["description"]; ok {
		if s, ok := d.str(p+"description", x); ok {
			r.Description = s
			if n := utf8.RuneCountInString(s); n > spec.MaxTextLength {
				d.errorf(x.value, "%sdescription is %d characters long: GitLab accepts at most %d", p, n, spec.MaxTextLength)
			}
		}
	}
	if x, ok := f["tag_list"]; ok {
		r.TagList = d.tags(p+"tag_list", x)
	}
	if x, ok := f["run_untagged"]; ok {
		r.RunUntagged, _ = d.boolean(p+"run_untagged", x)
	}
	if x, ok := f["locked"]; ok {
		r.Locked, _ = d.boolean(p+"locked", x)
	}
	if x, ok := f["paused"]; ok {
		r.Paused, _ = d.boolean(p+"paused", x)
	}
	if x, ok := f["access_level"]; ok {
		r.AccessLevel, _ = d.enum(p, "access_level", x, spec.NotProtected, spec.RefProtected)
	}
	if x, ok := f["maximum_timeout"]; ok {
		if v, ok := d.integer(p+"maximum_timeout", x); ok {
			switch {
			case v < 0:
				d.errorf(x.value, "%smaximum_timeout is %d: expected a number of seconds, at least %d (or 0 for no limit)", p, v, spec.MinMaximumTimeout)
			case v > 0 && v < spec.MinMaximumTimeout:
				d.errorf(x.value, "%smaximum_timeout is %d: GitLab needs at least %d seconds", p, v, spec.MinMaximumTimeout)
			default:
				r.MaximumTimeout = v
			}
		}
	}
	if x, ok := f["maintenance_note"]; ok {
		if s, ok := d.str(p+"maintenance_note", x); ok {
			r.MaintenanceNote = s
			if n := utf8.RuneCountInString(s); n > spec.MaxTextLength {
				d.errorf(x.value, "%smaintenance_note is %d characters long: GitLab accepts at most %d", p, n, spec.MaxTextLength)
			}
		}
	}
	if x, ok := f["token_expires_in"]; ok {
		r.TokenExpiresIn, _ = d.duration(p+"token_expires_in", x)
	}
	if x, ok := f["token_rotation_deadline_in"]; ok {
		r.TokenRotationDeadlineIn, _ = d.duration(p+"token_rotation_deadline_in", x)
	}
	d.owner(p, n, f, r)
	if !r.RunUntagged && len(r.TagList) == 0 && len(d.errs) == before {
		at := n
		if x, ok := f["run_untagged"]; ok {
			at = x.value
		}
		d.errorf(at, "%srun_untagged is false but tag_list is empty: a runner that runs no untagged jobs needs at least one tag", p)
	}

	if x, ok := f["variable"]; ok {
		e.VariableLine = x.key.Line
		d.variable(p+"variable.", x.value, &e.Spec)
	}
	e.Spec.DefaultOwner()
	if len(d.errs) > before {
		return e, false
	}
	// The field checks above mirror spec.Validate; should they ever miss a rule, the spec's own
	// sentence is still reported, at the item's line.
	if err := e.Spec.Validate(); err != nil {
		d.errorf(n, "%s: %v", e.Name(), err)
		return e, false
	}
	return e, true
}

// owner checks that the runner's owner key matches its type.
func (d *decoder) owner(p string, n *yaml.Node, f map[string]kv, r *spec.Runner) {
	_, hasProject := f["project_id"]
	_, hasGroup := f["group_id"]
	at := n
	if x, ok := f["runner_type"]; ok {
		at = x.value
	}
	switch r.Type {
	case spec.ProjectType:
		if !hasProject {
			d.errorf(at, "%s is a project_type runner without project_id: give the project's numeric id or full path such as group/project", strings.TrimSuffix(p, "."))
		}
		if hasGroup {
			d.errorf(f["group_id"].key, "%sgroup_id is given for a project_type runner: drop it, or set runner_type: group_type", p)
		}
	case spec.GroupType:
		if !hasGroup {
			d.errorf(at, "%s is a group_type runner without group_id: give the group's numeric id or full path such as my-group/sub", strings.TrimSuffix(p, "."))
		}
		if hasProject {
			d.errorf(f["project_id"].key, "%sproject_id is given for a group_type runner: drop it, or set runner_type: project_type", p)
		}
	case spec.InstanceType:
		for _, k := range []string{"project_id", "group_id"} {
			if x, ok := f[k]; ok {
				d.errorf(x.key, "%s%s is given for an instance_type runner: instance runners have no owner; drop it", p, k)
			}
		}
	}
}

func (d *decoder) variable(p string, n *yaml.Node, s *spec.Spec) {
	f, ok := d.fields(p, n, variableKeys)
	if !ok {
		return
	}
	v := &s.Variable
	if x, ok := f["key"]; ok {
		if k, ok := d.str(p+"key", x); ok {
			switch {
			case k == "":
				d.errorf(x.value, "%skey is empty: expected letters, digits and '_' such as %s", p, spec.DefaultKey)
			case len(k) > spec.MaxKeyLength:
				d.errorf(x.value, "%skey is %d characters long: GitLab accepts at most %d", p, len(k), spec.MaxKeyLength)
			case !keyRE.MatchString(k):
				d.errorf(x.value, "%skey is %q: a variable key can contain only letters, digits and '_'", p, k)
			default:
				v.Key = k
			}
		}
	}
	var owners []string
	if x, ok := f["project"]; ok {
		owners = append(owners, "project")
		v.Owner = spec.OwnerProject
		v.OwnerRef, _ = d.ref(p+"project", x)
	}
	if x, ok := f["group"]; ok {
		owners = append(owners, "group")
		v.Owner = spec.OwnerGroup
		v.OwnerRef, _ = d.ref(p+"group", x)
	}
	if x, ok := f["instance"]; ok {
		if b, ok := d.boolean(p+"instance", x); ok && b {
			owners = append(owners, "instance")
			v.Owner, v.OwnerRef = spec.OwnerInstance, ""
		}
	}
	if len(owners) > 1 {
		d.errorf(n, "%s has %s: they exclude each other; give at most one", strings.TrimSuffix(p, "."), strings.Join(owners, " and "))
	}
	if x, ok := f["environment_scope"]; ok {
		if sc, ok := d.str(p+"environment_scope", x); ok {
			if sc == "" || len(sc) > spec.MaxKeyLength || !scopeRE.MatchString(sc) {
				d.errorf(x.value, "%senvironment_scope is %q: expected * or an environment name such as production or review/*", p, sc)
			} else {
				v.EnvironmentScope = sc
			}
		}
	}
	if x, ok := f["protected"]; ok {
		v.Protected, _ = d.boolean(p+"protected", x)
	}
	if x, ok := f["hidden"]; ok {
		v.Hidden, _ = d.boolean(p+"hidden", x)
	}
	if x, ok := f["variable_type"]; ok {
		v.Type, _ = d.enum(p, "variable_type", x, spec.EnvVar, spec.File)
	}
	instance := v.Owner == spec.OwnerInstance || (v.Owner == "" && s.Runner.Type == spec.InstanceType)
	if x, ok := f["environment_scope"]; ok && instance && v.EnvironmentScope != spec.DefaultScope {
		d.errorf(x.value, "%senvironment_scope is %q but instance variables have no environment scope: drop it, or store the token in a project or group", p, v.EnvironmentScope)
	}
}

var (
	keyRE   = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	scopeRE = regexp.MustCompile(`^[A-Za-z0-9_\-/${}.*]+$`)
)

// str reads a string. Numbers are taken as written (description: 2024); true, false and
// empty values are refused, since they are usually a slip.
func (d *decoder) str(path string, x kv) (string, bool) {
	n := yamlnode.Resolve(x.value)
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s is %s: expected a string", path, describeNode(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float":
		return n.Value, true
	case "!!null":
		d.errorf(x.key, "%s has no value: give a string or remove the key", path)
	default:
		d.errorf(n, "%s is %s: expected a string (quote it if you mean the word)", path, n.Value)
	}
	return "", false
}

// ref reads a project or group: a positive number or a full path.
func (d *decoder) ref(path string, x kv) (string, bool) {
	n := yamlnode.Resolve(x.value)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		id, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil || id <= 0 {
			d.errorf(n, "%s is %s: expected a positive numeric id or a full path such as group/project", path, n.Value)
			return "", false
		}
		return strconv.FormatInt(id, 10), true
	}
	s, ok := d.str(path, x)
	if !ok {
		return "", false
	}
	s = strings.TrimSpace(s)
	if err := spec.CheckRef(path, s); err != nil {
		d.errorf(n, "%s is %q: expected a numeric id or a full path such as group/project", path, s)
		return "", false
	}
	return s, true
}

func (d *decoder) boolean(path string, x kv) (bool, bool) {
	n := yamlnode.Resolve(x.value)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		b, err := strconv.ParseBool(n.Value)
		if err == nil {
			return b, true
		}
	}
	d.errorf(n, "%s is %s: expected true or false", path, describeNode(n))
	return false, false
}

func (d *decoder) integer(path string, x kv) (int64, bool) {
	n := yamlnode.Resolve(x.value)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return v, true
		}
	}
	d.errorf(n, "%s is %s: expected a whole number of seconds", path, describeNode(n))
	return 0, false
}

// duration reads a Go duration such as 168h or 30m, as the --token-expires-in flag takes it.
// Ranges are spec.Validate's to judge.
func (d *decoder) duration(path string, x kv) (time.Duration, bool) {
	n := yamlnode.Resolve(x.value)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if v, err := time.ParseDuration(n.Value); err == nil {
			return v, true
		}
	}
	d.errorf(n, "%s is %s: expected a duration such as 168h or 30m", path, describeNode(n))
	return 0, false
}

func (d *decoder) enum(p, name string, x kv, allowed ...string) (string, bool) {
	s, ok := d.str(p+name, x)
	if !ok {
		return "", false
	}
	if contains(allowed, s) {
		return s, true
	}
	expected := strings.Join(allowed[:len(allowed)-1], ", ") + " or " + allowed[len(allowed)-1]
	d.errorf(x.value, "%s%s is %q: expected %s", p, name, s, expected)
	return "", false
}

// tags reads tag_list: a list, or one comma-separated string as --tag-list takes it.
func (d *decoder) tags(path string, x kv) []string {
	n := yamlnode.Resolve(x.value)
	var items []*yaml.Node
	switch {
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		var out []string
		for t := range strings.SplitSeq(n.Value, ",") {
			if t = strings.TrimSpace(t); t == "" {
				d.errorf(n, "%s %q has an empty tag: expected tags such as docker,linux", path, n.Value)
				return nil
			}
			out = append(out, t)
		}
		return d.checkTagCount(path, n, out)
	default:
		d.errorf(n, "%s is %s: expected a list of tags such as [docker, linux]", path, describeNode(n))
		return nil
	}
	out := []string{}
	for i, it := range items {
		it = yamlnode.Resolve(it)
		if it.Kind != yaml.ScalarNode || (it.ShortTag() != "!!str" && it.ShortTag() != "!!int" && it.ShortTag() != "!!float") {
			d.errorf(it, "%s[%d] is %s: expected a tag (a string)", path, i, describeNode(it))
			continue
		}
		t := strings.TrimSpace(it.Value)
		switch {
		case t == "":
			d.errorf(it, "%s[%d] is empty: expected a tag such as docker", path, i)
		case strings.Contains(t, ","):
			d.errorf(it, "%s[%d] is %q: a tag cannot contain a comma; list each tag as its own item", path, i, t)
		default:
			out = append(out, t)
		}
	}
	return d.checkTagCount(path, n, out)
}

func (d *decoder) checkTagCount(path string, n *yaml.Node, tags []string) []string {
	if len(tags) > spec.MaxTags {
		d.errorf(n, "%s has %d tags: GitLab accepts at most %d per runner", path, len(tags), spec.MaxTags)
	}
	return tags
}

// duplicates refuses two entries with the same variable (as written; Plan checks again
// once ids and paths are resolved).
func (d *decoder) duplicates(entries []Entry) {
	first := map[string]Entry{}
	for _, e := range entries {
		k := e.key()
		if prev, ok := first[k]; ok {
			d.errs = append(d.errs, fieldError{line: e.VariableLine, msg: fmt.Sprintf(
				"%s stores its token in %s, as %s (line %d) does: each runner needs its own variable; change its key or environment_scope",
				e.Name(), describeVariable(e.Spec.Variable), prev.Name(), prev.Line)})
			continue
		}
		first[k] = e
	}
}
