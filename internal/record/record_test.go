package record

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestVariableRoundTrip(t *testing.T) {
	exp := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	set := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	for _, v := range []Variable{
		{RunnerID: 1001, TokenSetAt: set},
		{RunnerID: 42, TokenExpiresAt: &exp, TokenSetAt: set, RotationPending: true},
		{RunnerID: 1 << 62, TokenExpiresAt: &exp, TokenSetAt: set, RotationPending: true, StoreID: NewStoreID()},
		// The longest record: every field, a 13-digit runner id.
		{RunnerID: 1 << 42, TokenExpiresAt: &exp, TokenSetAt: set, RotationPending: true, StoreID: NewStoreID(), RotationDeadline: &set,
			ExpiresIn: 360 * time.Hour, RotationDeadlineIn: 359*time.Hour + 59*time.Minute + 59*time.Second},
	} {
		d := v.Description()
		assert.Check(t, len(d) <= 255, d)
		got, ok := ParseVariable(d)
		assert.Assert(t, ok, d)
		assert.DeepEqual(t, got, v)
	}
	assert.Equal(t, Variable{RunnerID: 7, TokenSetAt: set}.Description(),
		"managed by runner-bootstrap; runner_id=7; token_expires_at=never; token_set_at=2026-11-25T08:00:00Z")
}

func TestParseVariableRejectsForeign(t *testing.T) {
	for _, d := range []string{"", "deploy token for prod", "managed by runner-bootstrap; runner_id=abc", "runner_id=5"} {
		_, ok := ParseVariable(d)
		assert.Check(t, !ok, d)
	}
}

func TestNoteRoundTrip(t *testing.T) {
	r := Runner{Target: "project:42/RUNNER_TOKEN@*", CreatedAt: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	for _, user := range []string{"", "owned by team-x", "line one\nline two\n"} {
		note := ComposeNote(user, r)
		gotUser, gotR, ok := ParseNote(note)
		assert.Assert(t, ok)
		assert.Check(t, is.Equal(gotUser, trimmed(user)))
		assert.Check(t, is.DeepEqual(gotR, r))
	}
	_, _, ok := ParseNote("someone else's runner")
	assert.Check(t, !ok)
}

func trimmed(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
