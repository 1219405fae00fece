package record

import (
	"strings"
	"testing"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
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

// FuzzParseNote: for every variable a valid spec can name and any note of the user's, the
// marker the tool appends reads back (target and creation time), the user's note comes back as
// they wrote it (without trailing new lines and spaces), and any note parses without panicking.
func FuzzParseNote(f *testing.F) {
	f.Add("", "project", int64(42), "RUNNER_TOKEN", "*", int64(1_800_000_000))
	f.Add("shared fleet\n", "instance", int64(0), "SHARED", "*", int64(0))
	f.Add("see [runner-bootstrap] target=project:1/X@* created=2020-01-01T00:00:00Z", "group", int64(10), "K", "review/*", int64(-1))
	f.Add("line one\r\nline two  \n\n", "project", int64(1), "A_B", "${CI_ENVIRONMENT_SLUG}", int64(maxUnix))
	f.Add("[runner-bootstrap]", "group", int64(9223372036854775807), "k", "production.eu-1", int64(minUnix))
	f.Fuzz(func(t *testing.T, userNote, owner string, ownerID int64, key, scope string, created int64) {
		ParseNote(userNote) // any note: no panic
		v := spec.Variable{Key: key, Owner: spec.OwnerKind(owner), OwnerRef: "42", EnvironmentScope: scope, Type: spec.EnvVar}
		if owner == string(spec.OwnerInstance) {
			v.OwnerRef = ""
		}
		if v.Validate() != nil || ownerID < 0 {
			return
		}
		r := Runner{Target: spec.Target(v.Owner, ownerID, key, scope), CreatedAt: clampUnix(created)}
		note := ComposeNote(userNote, r)
		gotUser, got, ok := ParseNote(note)
		if !ok || got.Target != r.Target || !got.CreatedAt.Equal(r.CreatedAt) {
			t.Fatalf("marker %+v in note %q parsed to %+v (%t)", r, note, got, ok)
		}
		if want := strings.TrimRight(userNote, "\n "); gotUser != want {
			t.Fatalf("user note %q came back as %q, want %q", userNote, gotUser, want)
		}
	})
}
