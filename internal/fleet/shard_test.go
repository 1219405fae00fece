package fleet_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fleet"
)

// manifest returns a valid manifest of n project runners, with variables spread over a few
// owners, keys and scopes.
func manifest(t *testing.T, n int) *fleet.Manifest {
	t.Helper()
	var b strings.Builder
	b.WriteString("runners:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - project_id: %d\n    description: r%d\n    variable: {key: K%d, environment_scope: env%d}\n", 42+i%2, i, i, i%5)
	}
	m, err := fleet.Parse("fleet.yaml", []byte(b.String()))
	assert.NilError(t, err)
	return m
}

// TestShardsPartition: for every shard count, each entry is in exactly one shard, and the
// split does not depend on the manifest's order.
func TestShardsPartition(t *testing.T) {
	m := manifest(t, 300)
	for n := 1; n <= 7; n++ {
		seen := map[int]int{}
		for i := 1; i <= n; i++ {
			sel := m.Select(fleet.Shard{Index: i, Total: n})
			if n > 1 {
				// A stable hash spreads the entries; no shard is empty or takes nearly all.
				assert.Check(t, len(sel) > 300/n/3 && len(sel) < 300*3/n, "shard %d/%d has %d entries", i, n, len(sel))
			}
			for _, e := range sel {
				seen[e.Index]++
			}
		}
		assert.Check(t, is.Len(seen, 300), "n=%d", n)
		for idx, c := range seen {
			assert.Check(t, is.Equal(c, 1), "entry %d is in %d shards of %d", idx, c, n)
		}
	}

	// Reversing the manifest changes no entry's shard.
	rev := &fleet.Manifest{File: m.File}
	for _, v := range slices.Backward(m.Entries) {
		rev.Entries = append(rev.Entries, v)
	}
	for i := 1; i <= 4; i++ {
		sh := fleet.Shard{Index: i, Total: 4}
		a, b := map[int]bool{}, map[int]bool{}
		for _, e := range m.Select(sh) {
			a[e.Index] = true
		}
		for _, e := range rev.Select(sh) {
			b[e.Index] = true
		}
		assert.Check(t, is.DeepEqual(a, b))
	}
}

func TestParseShard(t *testing.T) {
	s, err := fleet.ParseShard("2/4")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(s, fleet.Shard{Index: 2, Total: 4}))
	for _, bad := range []string{"0/4", "5/4", "2", "a/b", "1/0", "-1/3"} {
		_, err := fleet.ParseShard(bad)
		assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage), bad)
	}
	_, err = fleet.ParseShard("0/4")
	assert.Check(t, is.ErrorContains(err, "--shard 0/4 is out of range: the index counts from 1 to the total"))
}

func TestShardFromEnv(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want fleet.Shard
		err  string
	}{
		{env: nil, want: fleet.All},
		{env: map[string]string{"CI_NODE_TOTAL": "1"}, want: fleet.All},
		{env: map[string]string{"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "5"}, want: fleet.Shard{Index: 3, Total: 5}},
		{env: map[string]string{"CI_NODE_INDEX": "3"}, err: "set both"},
		{env: map[string]string{"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "5"}, err: "CI_NODE_INDEX=0 of CI_NODE_TOTAL=5 is out of range"},
		{env: map[string]string{"CI_NODE_INDEX": "x", "CI_NODE_TOTAL": "5"}, err: "are not numbers"},
	}
	for _, tc := range cases {
		got, err := fleet.ShardFromEnv(func(k string) string { return tc.env[k] })
		if tc.err != "" {
			assert.Check(t, is.ErrorContains(err, tc.err))
			continue
		}
		assert.Check(t, err)
		assert.Check(t, is.Equal(got, tc.want))
	}
}

// owners returns a manifest of the given owners (project paths as written) with count entries
// each, interleaved so that manifest order says nothing about owners.
func owners(t *testing.T, counts map[string]int) *fleet.Manifest {
	t.Helper()
	var b strings.Builder
	b.WriteString("runners:\n")
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range counts {
			if !yield(k) {
				return
			}
		}
	})
	for i := 0; ; i++ {
		wrote := false
		for _, p := range names {
			if i < counts[p] {
				fmt.Fprintf(&b, "  - project_id: %s\n    variable: {key: K%d}\n", p, i)
				wrote = true
			}
		}
		if !wrote {
			break
		}
	}
	m, err := fleet.Parse("fleet.yaml", []byte(b.String()))
	assert.NilError(t, err)
	return m
}

// shardsOf maps each owner (project as written) to the shards that have its entries.
func shardsOf(m *fleet.Manifest, total int) map[string][]int {
	out := map[string][]int{}
	for i, sel := range m.Split(total) {
		for _, e := range sel {
			o := e.Spec.Variable.OwnerRef
			if !slices.Contains(out[o], i+1) {
				out[o] = append(out[o], i+1)
			}
		}
	}
	return out
}

// TestShardsKeepOwnersTogether: ten owners of 100 entries in four shards are ten owners in one
// shard each, at most 300 entries a shard (the fair share is 250, a quarter above is 312), and
// every shard has some.
func TestShardsKeepOwnersTogether(t *testing.T) {
	counts := map[string]int{}
	for i := range 10 {
		counts[fmt.Sprintf("platform/p%02d", i)] = 100
	}
	m := owners(t, counts)
	for o, in := range shardsOf(m, 4) {
		assert.Check(t, is.Len(in, 1), "owner %s is in shards %v", o, in)
	}
	for i, sel := range m.Split(4) {
		assert.Check(t, len(sel) == 200 || len(sel) == 300, "shard %d/4 has %d entries", i+1, len(sel))
	}
}

// TestShardsSplitALargeOwner: an owner with more entries than a shard's share is spread over
// every shard by the variable hash; the small owners stay whole, and no shard gets much more
// than its share.
func TestShardsSplitALargeOwner(t *testing.T) {
	m := owners(t, map[string]int{"platform/big": 400, "platform/a": 30, "platform/b": 20, "platform/c": 10})
	in := shardsOf(m, 3)
	assert.Check(t, is.DeepEqual(in["platform/big"], []int{1, 2, 3}))
	for _, o := range []string{"platform/a", "platform/b", "platform/c"} {
		assert.Check(t, is.Len(in[o], 1), "owner %s is in shards %v", o, in[o])
	}
	for i, sel := range m.Split(3) {
		assert.Check(t, len(sel) < 154*5/4+40, "shard %d/3 has %d entries", i+1, len(sel))
	}

	// When the owners do not fit whole, the last ones are split: five owners of 200 in four
	// shards are not one shard of 400.
	m = owners(t, map[string]int{"platform/a": 200, "platform/b": 200, "platform/c": 200, "platform/d": 200, "platform/e": 200})
	split := 0
	for _, in := range shardsOf(m, 4) {
		if len(in) > 1 {
			split++
		}
	}
	assert.Check(t, is.Equal(split, 1))
	for i, sel := range m.Split(4) {
		assert.Check(t, len(sel) < 320, "shard %d/4 has %d entries", i+1, len(sel))
	}
}

// TestShardsDependOnTheManifestOnly: the split is a function of the entries, not of their
// order, so every job computes the same one; Select agrees with Split.
func TestShardsDependOnTheManifestOnly(t *testing.T) {
	m := owners(t, map[string]int{"platform/a": 7, "platform/b": 7, "platform/c": 7, "42": 7, "platform/d": 3})
	rev := &fleet.Manifest{File: m.File, Entries: slices.Clone(m.Entries)}
	slices.Reverse(rev.Entries)
	for n := 1; n <= 6; n++ {
		a, b := map[int]int{}, map[int]int{}
		for i, sel := range m.Split(n) {
			assert.Check(t, is.DeepEqual(sel, m.Select(fleet.Shard{Index: i + 1, Total: n})))
			for _, e := range sel {
				a[e.Index] = i
			}
		}
		for i, sel := range rev.Split(n) {
			for _, e := range sel {
				b[e.Index] = i
			}
		}
		assert.Check(t, is.DeepEqual(a, b), "n=%d", n)
		assert.Check(t, is.Len(a, len(m.Entries)))
	}
}
