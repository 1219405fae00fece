package spec

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
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
	room := noteRoom(s.Variable)
	s.Runner.MaintenanceNote = strings.Repeat("n", room)
	assert.NilError(t, s.Validate())
	marker := "[runner-bootstrap] target=" + Target(s.Variable.Owner, 1<<62, s.Variable.Key, s.Variable.EnvironmentScope) + " created=2026-11-25T08:00:00Z"
	assert.Check(t, is.Equal(len(s.Runner.MaintenanceNote)+1+len(marker), MaxTextLength))

	s.Variable.Key = strings.Repeat("K", 200)
	s.Variable.EnvironmentScope = "review/" + strings.Repeat("s", 150)
	assert.Check(t, is.ErrorContains(s.Validate(), "fit beside the tool's marker"))
}
