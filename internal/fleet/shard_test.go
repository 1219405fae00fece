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
