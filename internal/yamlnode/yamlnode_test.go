package yamlnode

import (
	"testing"

	"go.yaml.in/yaml/v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func parse(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	assert.NilError(t, yaml.Unmarshal([]byte(src), &doc))
	return doc.Content[0]
}

// values lists what each pair for key says, in the order Pairs returns them.
func values(ps []Pair) []string {
	var out []string
	for _, p := range ps {
		out = append(out, Resolve(p.Value).Value)
	}
	return out
}

// TestPairsFollowMergePrecedence: the mapping's own key wins, then the merge sources in the
// order they are listed, each with its own keys before the keys it merges itself. This is what
// yaml.v3 itself decides when it decodes into a map, which the test checks too.
func TestPairsFollowMergePrecedence(t *testing.T) {
	src := `
base: &base {a: base, b: base, c: base, d: base}
mid: &mid {<<: *base, b: mid, c: mid}
other: &other {c: other, d: other, e: other}
top:
  <<: [*mid, *other]
  a: top
`
	root := parse(t, src)
	top := Pairs(root, "top")[0].Value
	assert.Check(t, is.DeepEqual(values(Pairs(top, "a")), []string{"top", "base"}))
	assert.Check(t, is.DeepEqual(values(Pairs(top, "b")), []string{"mid", "base"}))
	assert.Check(t, is.DeepEqual(values(Pairs(top, "c")), []string{"mid", "base", "other"}))
	assert.Check(t, is.DeepEqual(values(Pairs(top, "d")), []string{"base", "other"}))
	assert.Check(t, is.DeepEqual(values(Pairs(top, "e")), []string{"other"}))
	assert.Check(t, is.Len(Pairs(top, "f"), 0))

	var decoded struct{ Top map[string]string }
	assert.NilError(t, yaml.Unmarshal([]byte(src), &decoded))
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		assert.Check(t, is.Equal(values(Pairs(top, k))[0], decoded.Top[k]), "key %s", k)
	}
}

func TestMergeKeysAreOnlyPlain(t *testing.T) {
	root := parse(t, "m: &m {x: 1}\na: {<<: *m}\nb: {\"<<\": *m}\n")
	assert.Check(t, is.Len(Pairs(Pairs(root, "a")[0].Value, "x"), 1))
	assert.Check(t, is.Len(Pairs(Pairs(root, "b")[0].Value, "x"), 0), `a quoted "<<" is an ordinary key`)
	assert.Check(t, is.Len(Pairs(Pairs(root, "b")[0].Value, "<<"), 1))
}

func TestResolveAndMergeSources(t *testing.T) {
	root := parse(t, "a: &a {x: 1}\nb: *a\nl: [*a, {y: 2}, 3]\n")
	b := Pairs(root, "b")[0].Value
	assert.Check(t, is.Equal(b.Kind, yaml.AliasNode))
	assert.Check(t, is.Equal(Resolve(b).Kind, yaml.MappingNode))
	assert.Check(t, Resolve(nil) == nil)
	srcs := MergeSources(Pairs(root, "l")[0].Value)
	assert.Assert(t, is.Len(srcs, 3))
	assert.Check(t, srcs[0] == Resolve(b), "an alias in the list is resolved")
	assert.Check(t, is.Equal(srcs[2].Kind, yaml.ScalarNode), "a non-mapping is returned for the caller to report")
	assert.Check(t, is.Len(MergeSources(b), 1))
	assert.Check(t, is.Len(Pairs(Pairs(root, "l")[0].Value, "x"), 0), "a list has no pairs")
}
