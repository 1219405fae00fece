package fleet

import (
	"strings"
	"testing"
)

// FuzzParse: any bytes give either a manifest whose every entry validates, or an error that
// names the file; never a panic. Every entry falls in exactly one shard.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"runners:\n  - project_id: 42\n    tag_list: [a, b]\n    variable: {key: A}\n",
		"runners:\n  - runner_type: group_type\n    group_id: platform\n    run_untagged: false\n    tag_list: \"x, y\"\n",
		"runners:\n  - runner_type: instance_type\n    variable: {instance: true, key: I}\n",
		".a: &a {tag_list: [t]}\nrunners:\n  - <<: *a\n    project_id: p/q\n",
		"runners: []\n", "runners: 3\n", "", "\x00", "runners:\n  - maximum_timeout: 1e99\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		m, err := Parse("fleet.yaml", []byte(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fleet.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		in := map[int]int{}
		for i := 1; i <= 3; i++ {
			for _, e := range m.Select(Shard{Index: i, Total: 3}) {
				in[e.Index]++
			}
		}
		for _, e := range m.Entries {
			if verr := e.Spec.Validate(); verr != nil {
				t.Fatalf("%s passed parsing but not validation: %v", e.Name(), verr)
			}
			if in[e.Index] != 1 {
				t.Fatalf("%s is in %d of 3 shards", e.Name(), in[e.Index])
			}
		}
	})
}

// FuzzParseShard: --shard values never panic, and accepted ones are in range.
func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"1/1", "3/7", "0/2", "2/1", "x", "1/", "/3", "-1/3", "99999999999999999999/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseShard(v)
		if err == nil && (s.Index < 1 || s.Total < 1 || s.Index > s.Total) {
			t.Fatalf("accepted %q as %v", v, s)
		}
	})
}
