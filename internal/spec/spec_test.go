package spec

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
)

func valid() Spec {
	s := New()
	s.Runner.ProjectRef = "platform/deploy"
	s.DefaultOwner()
	return s
}

// TestLengthsAreCharacters: GitLab's limits count characters, not bytes.
func TestLengthsAreCharacters(t *testing.T) {
	s := valid()
	s.Runner.Description = strings.Repeat("é", 1000) // 2,000 bytes, 1,000 characters
	assert.NilError(t, s.Validate())
	s.Runner.Description = strings.Repeat("é", 1025)
	assert.Check(t, is.ErrorContains(s.Validate(), "the description is 1025 characters long"))
}

// TestNoteLeavesRoomForTheMarker: the note and the marker line must fit GitLab's 1,024
// characters together, and the marker grows with the variable's key and scope.
func TestNoteLeavesRoomForTheMarker(t *testing.T) {
	s := valid()
	// The longest note Validate accepts, found by asking it (not by retyping its formula).
	room := 0
	for n := MaxTextLength; n > 0; n-- {
		s.Runner.MaintenanceNote = strings.Repeat("n", n)
		if s.Validate() == nil {
			room = n
			break
		}
	}
	assert.Assert(t, room > 0, "no maintenance note is accepted")
	// The note record writes for it, with the longest owner id and creation time, fits
	// GitLab's limit exactly.
	longest := record.Runner{
		Target:    Target(s.Variable.Owner, 1<<62, s.Variable.Key, s.Variable.EnvironmentScope),
		CreatedAt: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	note := record.ComposeNote(strings.Repeat("n", room), longest)
	assert.Check(t, is.Equal(utf8.RuneCountInString(note), MaxTextLength), "note %q", note)
	_, m, ok := record.ParseNote(note)
	assert.Check(t, ok && m.Target == longest.Target, "the marker does not survive a full note")

	s.Variable.Key = strings.Repeat("K", 200)
	s.Variable.EnvironmentScope = "review/" + strings.Repeat("s", 150)
	assert.Check(t, is.ErrorContains(s.Validate(), "fit beside the tool's marker"))
}
