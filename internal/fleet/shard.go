package fleet

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// Shard is one part of a manifest split across the jobs of a `parallel: N` CI job. Index is
// 1-based, as GitLab's CI_NODE_INDEX is: shard 1/3 is the first of three.
type Shard struct {
	Index, Total int
}

// All is the whole manifest.
var All = Shard{Index: 1, Total: 1}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Total) }

// Owns reports whether the entry belongs to this shard. The split hashes the entry's variable
// as written (owner, key, scope), so it does not depend on the order of the manifest: adding
// or removing an entry never moves another one to a different shard.
func (s Shard) Owns(e Entry) bool {
	if s.Total <= 1 {
		return true
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(e.key()))
	return int(h.Sum64()%uint64(s.Total)) == s.Index-1
}

// Select returns the entries of the shard, in manifest order.
func (m *Manifest) Select(s Shard) []Entry {
	var out []Entry
	for _, e := range m.Entries {
		if s.Owns(e) {
			out = append(out, e)
		}
	}
	return out
}

// ParseShard reads "I/N" (1 ≤ I ≤ N).
func ParseShard(v string) (Shard, error) {
	i, n, ok := strings.Cut(strings.TrimSpace(v), "/")
	s := Shard{}
	var err1, err2 error
	s.Index, err1 = strconv.Atoi(i)
	s.Total, err2 = strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fail.Usagef("--shard %q is not valid: expected I/N such as 2/4 (the second of four shards, counted from 1 like $CI_NODE_INDEX)", v)
	}
	return s, s.check("--shard " + v)
}

// ShardFromEnv reads GitLab's CI_NODE_INDEX and CI_NODE_TOTAL, which a job with `parallel: N`
// gets (1-based). Without them the shard is the whole manifest.
func ShardFromEnv(getenv func(string) string) (Shard, error) {
	idx, total := strings.TrimSpace(getenv("CI_NODE_INDEX")), strings.TrimSpace(getenv("CI_NODE_TOTAL"))
	if idx == "" && (total == "" || total == "1") {
		return All, nil
	}
	if idx == "" || total == "" {
		return Shard{}, fail.Usagef("CI_NODE_INDEX=%q and CI_NODE_TOTAL=%q: set both (GitLab does for parallel: N jobs) or pass --shard I/N", idx, total)
	}
	i, err1 := strconv.Atoi(idx)
	n, err2 := strconv.Atoi(total)
	if err1 != nil || err2 != nil {
		return Shard{}, fail.Usagef("CI_NODE_INDEX=%q and CI_NODE_TOTAL=%q are not numbers: pass --shard I/N instead", idx, total)
	}
	s := Shard{Index: i, Total: n}
	return s, s.check(fmt.Sprintf("CI_NODE_INDEX=%d of CI_NODE_TOTAL=%d", i, n))
}

func (s Shard) check(what string) error {
	if s.Total < 1 || s.Index < 1 || s.Index > s.Total {
		return fail.Usagef("%s is out of range: the index counts from 1 to the total, e.g. 1/3, 2/3, 3/3", what)
	}
	return nil
}
