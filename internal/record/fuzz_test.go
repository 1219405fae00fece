package record

import (
	"testing"
	"time"
)

// Times a record can hold: RFC 3339 has four-digit years.
const (
	minUnix = -62135596800 // 0001-01-01T00:00:00Z
	maxUnix = 253402300799 // 9999-12-31T23:59:59Z
)

func clampUnix(s int64) time.Time {
	span := int64(maxUnix - minUnix + 1)
	s %= span
	if s < 0 {
		s += span
	}
	return time.Unix(minUnix+s, 0).UTC()
}

// FuzzParseVariable: every record the tool writes reads back as written and fits GitLab's
// 255-character description; any description parses without panicking, and one that parses
// renders to a description that parses to the same record.
func FuzzParseVariable(f *testing.F) {
	f.Add("managed by runner-bootstrap; runner_id=1000; token_expires_at=never; token_set_at=2026-11-25T08:52:36Z", int64(1000), int64(1_800_000_000), int64(1_790_000_000), true, false)
	f.Add("managed by runner-bootstrap; runner_id=7; token_expires_at=2027-01-01T00:00:00Z; token_set_at=2026-11-25T08:52:36Z; rotation_pending=true", int64(1), int64(0), int64(0), false, true)
	f.Add("managed by runner-bootstrap; runner_id=-1", int64(-5), int64(-1), int64(maxUnix), true, true)
	f.Add("managed by runner-bootstrap;runner_id=99999999999999999999", int64(9223372036854775807), int64(minUnix), int64(-1), true, false)
	f.Add("deploy key for production", int64(0), int64(0), int64(0), false, false)
	f.Add("managed by runner-bootstrap; runner_id=3; runner_id=4; token_set_at=garbage", int64(3), int64(1), int64(2), false, false)
	f.Fuzz(func(t *testing.T, desc string, runnerID, expires, setAt int64, hasExpiry, pending bool) {
		if v, ok := ParseVariable(desc); ok {
			again, ok2 := ParseVariable(v.Description())
			if !ok2 || !sameVariable(v, again) {
				t.Fatalf("%q parsed to %+v, which renders to %q and parses to %+v (%t)", desc, v, v.Description(), again, ok2)
			}
		}
		if runnerID <= 0 {
			return
		}
		v := Variable{RunnerID: runnerID, TokenSetAt: clampUnix(setAt), RotationPending: pending}
		if hasExpiry {
			e := clampUnix(expires)
			v.TokenExpiresAt = &e
		}
		d := v.Description()
		if len(d) > 255 {
			t.Fatalf("description is %d characters, GitLab keeps 255: %q", len(d), d)
		}
		got, ok := ParseVariable(d)
		if !ok || !sameVariable(v, got) {
			t.Fatalf("%+v renders to %q and parses to %+v (%t)", v, d, got, ok)
		}
	})
}

func sameVariable(a, b Variable) bool {
	if a.RunnerID != b.RunnerID || !a.TokenSetAt.Equal(b.TokenSetAt) || a.RotationPending != b.RotationPending || a.StoreID != b.StoreID {
		return false
	}
	if (a.TokenExpiresAt == nil) != (b.TokenExpiresAt == nil) {
		return false
	}
	return a.TokenExpiresAt == nil || a.TokenExpiresAt.Equal(*b.TokenExpiresAt)
}
