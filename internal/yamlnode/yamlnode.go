// Package yamlnode reads yaml.v3 node trees the way YAML means them: aliases (*anchor) lead to
// the node they name, and merge keys (<<: *defaults, or a list of them) bring in keys that the
// mapping does not set itself. fleet's manifest decoder and migrate's Helm values reader both
// read mappings through it, so that both follow one precedence rule.
package yamlnode

import "go.yaml.in/yaml/v3"

// maxDepth bounds alias chains and nested merges; yaml.v3 refuses cycles, so this only
// guards against a pathological file.
const maxDepth = 64

// Resolve follows aliases to the node they name; nil stays nil.
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

// IsMerge reports whether k is a merge key: a plain <<, not a quoted "<<".
func IsMerge(k *yaml.Node) bool {
	return k != nil && k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// MergeSources returns the mappings a merge key's value brings in, in precedence order (the
// first wins): the one mapping it names, or each entry of a list of them, aliases resolved.
// Entries that are not mappings are returned too, for the caller to report.
func MergeSources(v *yaml.Node) []*yaml.Node {
	v = Resolve(v)
	if v == nil {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return []*yaml.Node{v}
	}
	out := make([]*yaml.Node, 0, len(v.Content))
	for _, e := range v.Content {
		out = append(out, Resolve(e))
	}
	return out
}

// Pair is one key of a mapping as written in the file: the key and value nodes, and the
// mapping that holds them (the mapping itself, or one a merge key brought in).
type Pair struct {
	Key, Value, Parent *yaml.Node
}

// Pairs returns every pair for key that mapping m holds, in YAML's precedence order: its own
// first, then, for each merge source in order, that source's own and then its merges. The
// first is the effective value; the others are what it overrides. m may be an alias; a node
// that is not a mapping has no pairs.
func Pairs(m *yaml.Node, key string) []Pair {
	var out []Pair
	seen := map[*yaml.Node]bool{}
	var visit func(m *yaml.Node, depth int)
	visit = func(m *yaml.Node, depth int) {
		m = Resolve(m)
		if m == nil || m.Kind != yaml.MappingNode || seen[m] || depth > maxDepth {
			return
		}
		seen[m] = true
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i]; k.Kind == yaml.ScalarNode && !IsMerge(k) && k.Value == key {
				out = append(out, Pair{Key: k, Value: m.Content[i+1], Parent: m})
			}
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if IsMerge(m.Content[i]) {
				for _, src := range MergeSources(m.Content[i+1]) {
					visit(src, depth+1)
				}
			}
		}
	}
	visit(m, 0)
	return out
}
