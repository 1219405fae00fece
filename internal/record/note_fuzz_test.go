package record_test

import (
	"strings"
	"testing"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// It is an external test: spec imports record for the marker's length budget.

// anyTime maps any number to a time RFC 3339 can write (four-digit years), as a record holds.
func anyTime(s int64) time.Time {
	const lo, hi = -62135596800, 253402300799 // 0001-01-01 and 9999-12-31T23:59:59Z
	s %= hi - lo + 1
	if s < 0 {
		s += hi - lo + 1
	}
	return time.Unix(lo+s, 0).UTC()
}

// FuzzParseNote: for every variable a valid spec can name and any note of the user's, the
// marker the tool appends reads back (target and creation time), the user's note comes back as
// they wrote it (without trailing new lines and spaces), and any note parses without panicking.
func FuzzParseNote(f *testing.F) {
	f.Add("", "project", int64(42), "RUNNER_TOKEN", "*", int64(1_800_000_000))
	f.Add("shared fleet\n", "instance", int64(0), "SHARED", "*", int64(0))
	f.Add("see [runner-bootstrap] target=project:1/X@* created=2020-01-01T00:00:00Z", "group", int64(10), "K", "review/*", int64(-1))
	f.Add("line one\r\nline two  \n\n", "project", int64(1), "A_B", "${CI_ENVIRONMENT_SLUG}", int64(253402300799))
	f.Add("[runner-bootstrap]", "group", int64(9223372036854775807), "k", "production.eu-1", int64(-62135596800))
	f.Fuzz(func(t *testing.T, userNote, owner string, ownerID int64, key, scope string, created int64) {
		record.ParseNote(userNote) // any note: no panic
		v := spec.Variable{Key: key, Owner: spec.OwnerKind(owner), OwnerRef: "42", EnvironmentScope: scope, Type: spec.EnvVar}
		if owner == string(spec.OwnerInstance) {
			v.OwnerRef = ""
		}
		if v.Validate() != nil || ownerID < 0 {
			return
		}
		r := record.Runner{Target: spec.Target(v.Owner, ownerID, key, scope), CreatedAt: anyTime(created)}
		note := record.ComposeNote(userNote, r)
		gotUser, got, ok := record.ParseNote(note)
		if !ok || got.Target != r.Target || !got.CreatedAt.Equal(r.CreatedAt) {
			t.Fatalf("marker %+v in note %q parsed to %+v (%t)", r, note, got, ok)
		}
		if want := strings.TrimRight(userNote, "\n "); gotUser != want {
			t.Fatalf("user note %q came back as %q, want %q", userNote, gotUser, want)
		}
	})
}
