package migrate

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/yamlnode"
)

// RewriteOptions says how the migrated values file references the runner authentication token.
type RewriteOptions struct {
	// SecretName, when set, makes the chart read the token from this existing Secret
	// (runners.secret), which needs the keys runner-token and runner-registration-token ("").
	// When empty, runnerToken stays out of the file and the deploy job passes it with --set,
	// unless the file already names a Secret, which is then kept.
	SecretName string
	// VariableKey is the CI/CD variable that holds the token, named in the file's header
	// comment; empty means spec.DefaultKey (RUNNER_TOKEN).
	VariableKey string
}

// headerPrefix starts every line of the comment Rewrite puts on top of the file; a later
// Rewrite replaces those lines, which keeps Rewrite idempotent.
const headerPrefix = "# runner-bootstrap:"

var (
	secretNameRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	variableKeyRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// Rewrite returns the migrated values file: runnerRegistrationToken and every legacy runner
// attribute removed from both places (with the comment lines directly above them), a literal
// runnerToken removed, and the token referenced instead of written: through runners.secret, or
// through the deploy job's --set runnerToken="$RUNNER_TOKEN", as a header comment explains.
// Everything else is kept byte for byte. When a change cannot be made line by line (flow style
// mappings, anchors used elsewhere), the file is re-encoded by yaml.v3 instead, which keeps
// comments, key order, anchors and quoting but not blank lines. Rewriting a migrated file
// returns it unchanged. The result never holds a token that was in runnerToken or
// runnerRegistrationToken.
func (m *HelmMigration) Rewrite(opts RewriteOptions) ([]byte, error) {
	out, err := m.rewrite(opts)
	if err != nil {
		return nil, err
	}
	// The last word: whatever the edits above did or did not reach (a token in a comment, a
	// list, a key, a multi-line value, behind an alias), no token leaves in the written file.
	if ms := token.Find(string(out), minTokenTail); len(ms) > 0 {
		line := 1 + strings.Count(string(out[:ms[0].Start]), "\n")
		return nil, fail.Usagef("%s: the migrated file would still hold a %s (line %d of the result, in a comment, a list, a key or a multi-line value that migrate does not drop by itself): remove it from %s by hand and run again; nothing was changed", m.File, ms[0].Shape.Label, line, m.File)
	}
	return out, nil
}

func (m *HelmMigration) rewrite(opts RewriteOptions) ([]byte, error) {
	if opts.VariableKey == "" {
		opts.VariableKey = spec.DefaultKey
	}
	if !variableKeyRE.MatchString(opts.VariableKey) || len(opts.VariableKey) > spec.MaxKeyLength {
		return nil, fail.Usagef("variable key %s is not valid: expected letters, digits and '_' such as %s", show(opts.VariableKey), spec.DefaultKey)
	}
	if opts.SecretName != "" && (len(opts.SecretName) > 253 || !secretNameRE.MatchString(opts.SecretName)) {
		return nil, fail.Usagef("Secret name %s is not valid: expected a Kubernetes name such as gitlab-runner-secret (lowercase letters, digits, '-' and '.')", show(opts.SecretName))
	}
	// A byte order mark is only allowed at the very start, where the header now goes.
	body := stripHeader(trimBOMs(m.data))

	// Plan on one parse and edit lines; re-encode a second parse; keep the line edits only when
	// they mean exactly what the re-encoded tree means.
	v, err := load(m.File, body)
	if err != nil {
		return nil, err
	}
	p, err := planEdits(v, opts)
	if err != nil {
		return nil, err
	}
	secret := opts.SecretName
	if secret == "" {
		secret = m.SecretName
	}
	header := headerComment(opts.VariableKey, secret)

	if p.empty() {
		return join(header, body), nil
	}
	model, err := migrateTree(m.File, body, opts)
	if err != nil {
		return nil, err
	}
	var want any
	if err := model.Decode(&want); err != nil {
		return nil, fail.Usagef("%s cannot be read as plain values (%s): expected a gitlab-runner chart values file", m.File, yamlReason(err))
	}
	if out, ok := editLines(body, v, p); ok && decodesTo(out, want) {
		return join(header, out), nil
	}
	out, err := encode(m.File, model)
	if err != nil {
		return nil, err
	}
	if !decodesTo(out, want) {
		// yaml.v3 does not write every scalar back exactly (folded text with indented lines).
		return nil, fail.Usagef("%s cannot be rewritten without changing one of its other values: remove the legacy keys by hand", m.File)
	}
	return join(header, out), nil
}

// decodesTo reports whether the YAML text means want.
func decodesTo(text []byte, want any) bool {
	var got any
	if err := yaml.Unmarshal(text, &got); err != nil {
		return false
	}
	return reflect.DeepEqual(got, want)
}

// join puts the header comment on top of body, separated by a blank line.
func join(header string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	if len(bytes.TrimSpace(body)) > 0 {
		b.WriteString("\n")
		b.Write(body)
		if !bytes.HasSuffix(body, []byte("\n")) {
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// headerComment explains where the token went. Every line starts with headerPrefix.
func headerComment(variableKey, secret string) string {
	lines := []string{
		"migrated to the new runner registration workflow. runnerRegistrationToken",
		"and the legacy runner settings (tags, locked, runUntagged, protected,",
		"maximumTimeout) are gone: the runner and its settings live in GitLab.",
	}
	if secret != "" {
		lines = append(lines,
			fmt.Sprintf("the runner authentication token is in the Secret %q", secret),
			"(runners.secret). It needs the key runner-token, holding the token from the",
			fmt.Sprintf("CI/CD variable %s, and runner-registration-token set to \"\" (the", variableKey),
			"pods mount both). The chart does not restart the pods when that Secret",
			"changes: restart them after each token rotation.",
		)
	} else {
		lines = append(lines,
			"the runner authentication token is not written here: the deploy job passes",
			fmt.Sprintf("the CI/CD variable %s with --set runnerToken=\"$%s\".", variableKey, variableKey),
		)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(headerPrefix + " " + l + "\n")
	}
	return b.String()
}

// stripHeader removes a header comment written by an earlier Rewrite, and the blank line after it.
func stripHeader(data []byte) []byte {
	rest := data
	found := false
	for {
		line, after, ok := bytes.Cut(rest, []byte("\n"))
		if !bytes.HasPrefix(line, []byte(headerPrefix)) {
			break
		}
		found = true
		if !ok {
			return nil
		}
		rest = after
	}
	if !found {
		return data
	}
	if line, after, ok := bytes.Cut(rest, []byte("\n")); ok && len(bytes.TrimSpace(line)) == 0 {
		rest = after
	}
	return rest
}

// plan is what Rewrite changes, as nodes of one parse.
type plan struct {
	removals []yamlnode.Pair // pairs to delete
	secret   string          // the value runners.secret must get; "" leaves it as it is
	runners  *yamlnode.Pair  // the top-level runners pair, if the file has one
}

func (p plan) empty() bool { return len(p.removals) == 0 && p.secret == "" }

// planEdits finds the pairs to remove and whether runners.secret must be set.
func planEdits(v *values, opts RewriteOptions) (plan, error) {
	var p plan
	if v.root == nil {
		p.secret = opts.SecretName
		return p, nil
	}
	seen := map[*yaml.Node]bool{}
	add := func(ps ...yamlnode.Pair) {
		for _, x := range ps {
			if !seen[x.Key] {
				seen[x.Key] = true
				p.removals = append(p.removals, x)
			}
		}
	}
	for _, key := range append([]string{keyRegistrationToken}, legacyKeys...) {
		add(yamlnode.Pairs(v.root, key)...)
	}
	for _, x := range yamlnode.Pairs(v.root, keyRunnerToken) {
		if val := yamlnode.Resolve(x.Value); val == nil || val.Kind != yaml.ScalarNode || !isPlaceholder(val.Value) {
			add(x)
		}
	}
	var runners *yaml.Node
	if rs := yamlnode.Pairs(v.root, keyRunners); len(rs) > 0 {
		p.runners = &rs[0]
		if rv := yamlnode.Resolve(rs[0].Value); rv != nil && rv.Kind == yaml.MappingNode {
			runners = rv
		}
	}
	removedUnder := 0
	for _, key := range legacyKeys {
		ps := yamlnode.Pairs(runners, key)
		removedUnder += len(ps)
		add(ps...)
	}
	// Any other single-line value holding a token (a runner token pasted under another key, an
	// access token): the pair is dropped, and strayTokens has named it in the warnings.
	for _, x := range strayTokenPairs(v) {
		add(x)
	}
	// A token's anchor used elsewhere would carry the token into the migrated file.
	for _, x := range p.removals {
		if x.Key.Value != keyRunnerToken && x.Key.Value != keyRegistrationToken && !hasToken(x.Value.Value) {
			continue
		}
		if a := usedAnchor(v, x); a != "" {
			return p, v.errorf(x.Key, "%s is reused elsewhere through the alias *%s: remove those uses first, so the token does not stay in the file", x.Key.Value, scrub(a))
		}
	}

	if opts.SecretName != "" {
		switch {
		case p.runners != nil && p.runners.Parent != v.root:
			return p, v.errorf(p.runners.Key, "runners comes from a YAML merge key (<<): set runners.secret by hand, or write runners out in the file")
		case p.runners != nil && p.runners.Value.Kind == yaml.AliasNode:
			return p, v.errorf(p.runners.Key, "runners is a YAML alias: set runners.secret by hand, or write runners out in the file")
		}
		if runners == nil || !ownValueIs(runners, keySecret, opts.SecretName) {
			p.secret = opts.SecretName
		}
	}
	// runners left empty would override the chart's defaults with nothing: drop the key instead.
	if p.secret == "" && removedUnder > 0 && p.runners != nil && p.runners.Parent == v.root &&
		p.runners.Value == runners && runners.Anchor == "" && ownPairsLeft(runners, seen) == 0 {
		add(*p.runners)
	}
	return p, nil
}

// ownValueIs reports whether mapping m itself sets key to the string value.
func ownValueIs(m *yaml.Node, key, value string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && !yamlnode.IsMerge(k) && k.Value == key {
			val := yamlnode.Resolve(m.Content[i+1])
			return val != nil && val.Kind == yaml.ScalarNode && val.Value == value
		}
	}
	return false
}

// ownPairsLeft counts the pairs of m that are not being removed.
func ownPairsLeft(m *yaml.Node, removed map[*yaml.Node]bool) int {
	n := 0
	for i := 0; i+1 < len(m.Content); i += 2 {
		if !removed[m.Content[i]] {
			n++
		}
	}
	return n
}

// usedAnchor returns the name of an anchor defined inside pair x that an alias outside x uses.
func usedAnchor(v *values, x yamlnode.Pair) string {
	inside := map[*yaml.Node]bool{}
	var anchors []*yaml.Node
	walkNodes(x.Key, func(n *yaml.Node) { inside[n] = true })
	walkNodes(x.Value, func(n *yaml.Node) {
		inside[n] = true
		if n.Anchor != "" {
			anchors = append(anchors, n)
		}
	})
	if len(anchors) == 0 {
		return ""
	}
	name := ""
	walkNodes(v.doc, func(n *yaml.Node) {
		if name != "" || inside[n] || n.Kind != yaml.AliasNode {
			return
		}
		for _, a := range anchors {
			if n.Alias == a {
				name = a.Anchor
			}
		}
	})
	return name
}

// walkNodes visits n and everything written under it, in document order, without following aliases.
func walkNodes(n *yaml.Node, f func(*yaml.Node)) {
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if n == nil || depth > 1000 {
			return
		}
		f(n)
		for _, c := range n.Content {
			walk(c, depth+1)
		}
	}
	walk(n, 0)
}

// editLines applies p to the text of the file: whole lines out, one line in. It reports false
// when a change cannot be made that way; Rewrite then re-encodes the file.
func editLines(body []byte, v *values, p plan) ([]byte, bool) {
	lines := strings.SplitAfter(string(body), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	n := len(lines)
	deleted := make([]bool, n+2) // 1-based
	type run struct{ from, to, indent int }
	var runs []run
	for _, x := range p.removals {
		if x.Parent.Style&yaml.FlowStyle != 0 || usedAnchor(v, x) != "" {
			return nil, false
		}
		l, c := x.Key.Line, x.Key.Column
		if l < 1 || l > n || c < 1 || len(lines[l-1]) < c-1 || strings.TrimLeft(lines[l-1][:c-1], " ") != "" {
			return nil, false
		}
		end := valueEnd(lines, l, c, x.Value.Kind == yaml.SequenceNode)
		start := l
		for start > 1 && isComment(lines[start-2]) && indent(lines[start-2]) == c-1 {
			start--
		}
		runs = append(runs, run{start, end, c - 1})
		for i := start; i <= end; i++ {
			deleted[i] = true
		}
	}
	// Removing a block should not leave two blank lines, nor a blank line opening a block
	// that still has content after it.
	for _, r := range runs {
		a, b := r.from, r.to
		for a > 1 && deleted[a-1] {
			a--
		}
		for b < n && deleted[b+1] {
			b++
		}
		if b >= n || !isBlank(lines[b]) {
			continue
		}
		prevBlank := a == 1 || isBlank(lines[a-2])
		opensBlock := !prevBlank && !isComment(lines[a-2]) && indent(lines[a-2]) < r.indent
		if opensBlock {
			// Only when the block goes on after the blank line.
			next := b + 2
			for next <= n && (isBlank(lines[next-1]) || isComment(lines[next-1])) {
				next++
			}
			opensBlock = next <= n && indent(lines[next-1]) >= r.indent
		}
		if prevBlank || opensBlock {
			deleted[b+1] = true
		}
	}

	replace := map[int]string{}
	insertAfter := map[int]string{}
	var tail string
	if p.secret != "" {
		text, ok := scalarText(p.secret)
		if !ok {
			return nil, false
		}
		switch {
		case p.runners == nil:
			if v.root != nil && v.root.Style&yaml.FlowStyle != 0 {
				return nil, false
			}
			if v.root == nil && v.doc != nil && len(v.doc.Content) > 0 {
				return nil, false // the document is an explicit null: re-encode
			}
			tail = "runners:\n  secret: " + text + "\n"
		default:
			rv := p.runners.Value
			if rv.Kind != yaml.MappingNode || rv.Style&yaml.FlowStyle != 0 || len(rv.Content) == 0 {
				return nil, false
			}
			ind := strings.Repeat(" ", rv.Content[0].Column-1)
			if sp := ownPair(rv, keySecret); sp != nil {
				sv := sp.Value
				l := sp.Key.Line
				if sv.Kind != yaml.ScalarNode || sv.Line != l || sv.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 ||
					sv.Anchor != "" || valueEnd(lines, l, sp.Key.Column, false) != l || deleted[l] {
					return nil, false
				}
				comment := sv.LineComment
				if comment == "" {
					comment = sp.Key.LineComment
				}
				if comment != "" {
					comment = " " + comment
				}
				replace[l] = strings.Repeat(" ", sp.Key.Column-1) + "secret: " + text + comment + lineEnding(lines[l-1])
			} else {
				l := p.runners.Key.Line
				if l < 1 || l > n || deleted[l] {
					return nil, false
				}
				insertAfter[l] = ind + "secret: " + text + lineEnding(lines[l-1])
			}
		}
	}

	var b strings.Builder
	for i := 1; i <= n; i++ {
		if !deleted[i] {
			if r, ok := replace[i]; ok {
				b.WriteString(r)
			} else {
				b.WriteString(lines[i-1])
			}
		}
		if s, ok := insertAfter[i]; ok {
			if !strings.HasSuffix(b.String(), "\n") && b.Len() > 0 {
				b.WriteString("\n")
			}
			b.WriteString(s)
		}
	}
	if tail != "" {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
			b.WriteString("\n")
		}
		b.WriteString(tail)
	}
	return []byte(b.String()), true
}

// valueEnd returns the last line of the value of the key on line l, column c: the following
// lines indented deeper than the key (or, for a block sequence, its "- " entries at the key's
// own indentation), leaving out trailing blank and comment lines, which belong to what follows.
func valueEnd(lines []string, l, c int, seq bool) int {
	end := l
	for j := l + 1; j <= len(lines); j++ {
		line := lines[j-1]
		if isBlank(line) || isComment(line) {
			continue
		}
		in := indent(line)
		t := strings.TrimSpace(line)
		if in > c-1 || (seq && in == c-1 && (t == "-" || strings.HasPrefix(t, "- "))) {
			end = j
			continue
		}
		break
	}
	return end
}

// ownPair returns the pair of mapping m itself (not merged) for key.
func ownPair(m *yaml.Node, key string) *yamlnode.Pair {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && !yamlnode.IsMerge(k) && k.Value == key {
			return &yamlnode.Pair{Key: k, Value: m.Content[i+1], Parent: m}
		}
	}
	return nil
}

// scalarText is how yaml.v3 writes s as a string scalar, quoted only when it must be.
func scalarText(s string) (string, bool) {
	out, err := yaml.Marshal(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
	if err != nil {
		return "", false
	}
	text := strings.TrimSuffix(string(out), "\n")
	return text, !strings.Contains(text, "\n")
}

func isBlank(line string) bool { return strings.TrimSpace(line) == "" }

func isComment(line string) bool { return strings.HasPrefix(strings.TrimSpace(line), "#") }

func indent(line string) int { return len(line) - len(strings.TrimLeft(line, " ")) }

func lineEnding(line string) string {
	if strings.HasSuffix(line, "\r\n") {
		return "\r\n"
	}
	return "\n"
}

// migrateTree applies the migration to a fresh parse of body and returns its document node.
func migrateTree(name string, body []byte, opts RewriteOptions) (*yaml.Node, error) {
	v, err := load(name, body)
	if err != nil {
		return nil, err
	}
	p, err := planEdits(v, opts)
	if err != nil {
		return nil, err
	}
	if v.doc == nil {
		v.doc = &yaml.Node{Kind: yaml.DocumentNode}
	}

	// An anchor defined in a removed pair but used elsewhere moves to its first use.
	removed := map[*yaml.Node]bool{}
	var anchored []*yaml.Node
	for _, x := range p.removals {
		for _, top := range []*yaml.Node{x.Key, x.Value} {
			walkNodes(top, func(n *yaml.Node) {
				removed[n] = true
				if n.Anchor != "" {
					anchored = append(anchored, n)
				}
			})
		}
	}
	if len(anchored) > 0 {
		var aliases []*yaml.Node
		walkNodes(v.doc, func(n *yaml.Node) {
			if n.Kind == yaml.AliasNode && !removed[n] {
				aliases = append(aliases, n)
			}
		})
		for _, a := range anchored {
			for i, al := range aliases {
				if al == nil || al.Alias != a {
					continue
				}
				moved := *a
				moved.HeadComment, moved.LineComment, moved.FootComment = al.HeadComment, al.LineComment, al.FootComment
				*al = moved
				aliases[i] = nil
				break
			}
		}
	}

	touched := map[*yaml.Node]bool{}
	for _, x := range p.removals {
		c := x.Parent.Content
		for i := 0; i+1 < len(c); i += 2 {
			if c[i] == x.Key {
				x.Parent.Content = append(c[:i:i], c[i+2:]...)
				touched[x.Parent] = true
				break
			}
		}
	}
	for m := range touched {
		if len(m.Content) == 0 && m != v.root {
			m.Style |= yaml.FlowStyle // an emptied mapping is written as {}, which YAML merges accept
		}
	}

	if p.secret != "" {
		if v.root == nil {
			v.root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			v.doc.Content = []*yaml.Node{v.root}
		}
		val := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p.secret}
		switch {
		case p.runners == nil:
			v.root.Content = append(v.root.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: keyRunners},
				&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
					{Kind: yaml.ScalarNode, Tag: "!!str", Value: keySecret}, val,
				}})
		case p.runners.Value.Kind == yaml.MappingNode:
			rv := p.runners.Value
			if sp := ownPair(rv, keySecret); sp != nil {
				val.HeadComment, val.LineComment = sp.Value.HeadComment, sp.Value.LineComment
				for i := 1; i < len(rv.Content); i += 2 {
					if rv.Content[i] == sp.Value {
						rv.Content[i] = val
					}
				}
			} else {
				if len(rv.Content) == 0 {
					rv.Style &^= yaml.FlowStyle
				}
				rv.Content = append([]*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: keySecret}, val}, rv.Content...)
			}
		default: // runners: (null)
			for i := 1; i < len(v.root.Content); i += 2 {
				if v.root.Content[i] == p.runners.Value {
					v.root.Content[i] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
						{Kind: yaml.ScalarNode, Tag: "!!str", Value: keySecret}, val,
					}, LineComment: p.runners.Value.LineComment}
				}
			}
		}
	}

	return v.doc, nil
}

// encode writes a document with yaml.v3, indented like the chart's own values.yaml.
func encode(name string, doc *yaml.Node) ([]byte, error) {
	if len(doc.Content) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fail.Usagef("%s cannot be written back as YAML (%s): expected a plain gitlab-runner chart values file", name, yamlReason(err))
	}
	if err := enc.Close(); err != nil {
		return nil, fail.Usagef("%s cannot be written back as YAML (%s): expected a plain gitlab-runner chart values file", name, yamlReason(err))
	}
	return buf.Bytes(), nil
}

// trimBOMs drops every leading UTF-8 byte order mark: YAML reads any number of them at the
// start, but after the header they would become text.
func trimBOMs(b []byte) []byte {
	for bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		b = b[3:]
	}
	return b
}
