package fleet

import (
	"fmt"
	"hash/fnv"
	"sort"
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

// Select returns the entries of the shard, in manifest order (see Split).
func (m *Manifest) Select(s Shard) []Entry {
	if s.Total <= 1 {
		return m.Entries
	}
	return m.Split(s.Total)[s.Index-1]
}

// Split divides the manifest into total shards, each in manifest order. Entries are kept
// together by their variable's owner as written, so that each owner's variables and runners are
// listed, looked up and read back by one shard only: a shard of a hashed split has entries of
// nearly every owner and reads each owner's lists again.
//
// The split depends on the manifest alone, so every job of a parallel: N job computes the same
// one: owners are taken largest first (ties by the FNV-1a hash of the owner, then the owner as
// written), each into the least-loaded shard (ties: the lowest index), as long as that keeps the
// shard within a quarter above its fair share (entries ÷ shards, rounded up). An owner that does
// not fit — one larger than that, or the last ones when the shards are nearly full — is split by
// the hash of each entry's variable (owner, key and scope as written), as every entry was before.
//
// Adding or removing entries changes the owners' sizes and so may move a whole owner to another
// shard; no state is kept between runs, so that is harmless (see docs/fleet.md).
func (m *Manifest) Split(total int) [][]Entry {
	out := make([][]Entry, max(total, 1))
	if total <= 1 {
		out[0] = m.Entries
		return out
	}
	shardOf := m.assign(total)
	for i, e := range m.Entries {
		out[shardOf[i]] = append(out[shardOf[i]], e)
	}
	return out
}

// assign returns the 0-based shard of each entry, by position (see Split).
func (m *Manifest) assign(total int) []int {
	type owner struct {
		key     string
		hash    uint64
		entries []int // positions in m.Entries
	}
	byKey := map[string]*owner{}
	var owners []*owner
	for i, e := range m.Entries {
		k := e.ownerKey()
		o, ok := byKey[k]
		if !ok {
			o = &owner{key: k, hash: fnv64(k)}
			byKey[k] = o
			owners = append(owners, o)
		}
		o.entries = append(o.entries, i)
	}
	sort.Slice(owners, func(i, j int) bool {
		a, b := owners[i], owners[j]
		if len(a.entries) != len(b.entries) {
			return len(a.entries) > len(b.entries)
		}
		if a.hash != b.hash {
			return a.hash < b.hash
		}
		return a.key < b.key
	})
	fair := (len(m.Entries) + total - 1) / total
	limit := fair + fair/4
	load := make([]int, total)
	shardOf := make([]int, len(m.Entries))
	for _, o := range owners {
		least := 0
		for s := range load {
			if load[s] < load[least] {
				least = s
			}
		}
		if load[least]+len(o.entries) <= limit {
			for _, i := range o.entries {
				shardOf[i] = least
			}
			load[least] += len(o.entries)
			continue
		}
		for _, i := range o.entries {
			s := int(fnv64(m.Entries[i].key()) % uint64(total))
			shardOf[i] = s
			load[s]++
		}
	}
	return shardOf
}

func fnv64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
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
