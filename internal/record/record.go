// Package record keeps the two links that make runner-bootstrap idempotent without any state
// file: a managed variable's description names its runner (hidden values can never be read
// back, so the link must live beside the value), and a created runner's maintenance note names
// the variable it was created for (so a runner whose token was never stored can be found and
// cleaned up by the next run).
package record

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// VariablePrefix starts the description of every variable the tool manages.
const VariablePrefix = "managed by runner-bootstrap"

// VerifySystemID is the runner manager the tool's own token checks (POST /runners/verify)
// make GitLab record, and then remove again. GitLab system ids are r_ or s_ and 12 characters.
// Every list of a runner's managers leaves it out: it is not a host, and a check that could not
// remove it must not make a runner look deployed or shared.
const VerifySystemID = "r_rbootstrap0"

// Variable is what a managed variable's description records.
type Variable struct {
	RunnerID int64
	// TokenExpiresAt is nil when the token never expires.
	TokenExpiresAt *time.Time
	// TokenSetAt is when the stored value was written.
	TokenSetAt time.Time
	// RotationPending is set before a token reset and cleared when the new token is stored, so
	// a run that died in between is known to have left a stale value.
	RotationPending bool
	// StoreID is a random id each rotation writes beside the token it stores, so that a run
	// which finds its stored token revoked can tell whether the variable still holds its own
	// write (then a concurrent reset revoked it and it repairs) or a later run's (which checks
	// its own). Empty in records written by create.
	StoreID string
	// RotationDeadline is the token_rotation_deadline the runner was created with (EE 18.10+):
	// after it GitLab refuses to reset the token, so rotate replaces the runner. GitLab's REST
	// API does not report it, so this record is the only place it is known.
	RotationDeadline *time.Time
	// ExpiresIn and RotationDeadlineIn are the --token-expires-in and
	// --token-rotation-deadline-in the runner was created with, so a replacement gets the same.
	ExpiresIn, RotationDeadlineIn time.Duration
}

// Description renders the record; it stays well under GitLab's 255-character limit.
func (v Variable) Description() string {
	exp := "never"
	if v.TokenExpiresAt != nil {
		exp = v.TokenExpiresAt.UTC().Format(time.RFC3339)
	}
	s := fmt.Sprintf("%s; runner_id=%d; token_expires_at=%s; token_set_at=%s",
		VariablePrefix, v.RunnerID, exp, v.TokenSetAt.UTC().Format(time.RFC3339))
	if v.StoreID != "" {
		s += "; store_id=" + v.StoreID
	}
	if v.RotationDeadline != nil {
		s += "; rotation_deadline=" + v.RotationDeadline.UTC().Format(time.RFC3339)
	}
	if v.ExpiresIn > 0 {
		// One short field (seconds) keeps the longest record under GitLab's 255 characters.
		s += fmt.Sprintf("; intervals=%d/%d", int64(v.ExpiresIn/time.Second), int64(v.RotationDeadlineIn/time.Second))
	}
	if v.RotationPending {
		s += "; rotation_pending=true"
	}
	return s
}

var fieldRE = regexp.MustCompile(`([a-z_]+)=([^;\s]+)`)

// storeIDRE is what NewStoreID makes; anything else in a description is ignored.
var storeIDRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// NewStoreID returns a fresh random StoreID.
func NewStoreID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ParseVariable reads a managed variable's description. ok is false when the description
// was not written by this tool.
func ParseVariable(desc string) (v Variable, ok bool) {
	if !strings.HasPrefix(desc, VariablePrefix) {
		return Variable{}, false
	}
	for _, m := range fieldRE.FindAllStringSubmatch(desc, -1) {
		switch m[1] {
		case "runner_id":
			id, err := strconv.ParseInt(m[2], 10, 64)
			if err != nil {
				return Variable{}, false
			}
			v.RunnerID = id
		case "token_expires_at":
			if t, err := time.Parse(time.RFC3339, m[2]); err == nil {
				v.TokenExpiresAt = &t
			}
		case "token_set_at":
			if t, err := time.Parse(time.RFC3339, m[2]); err == nil {
				v.TokenSetAt = t
			}
		case "rotation_pending":
			v.RotationPending = m[2] == "true"
		case "store_id":
			if storeIDRE.MatchString(m[2]) {
				v.StoreID = m[2]
			}
		case "rotation_deadline":
			if t, err := time.Parse(time.RFC3339, m[2]); err == nil {
				v.RotationDeadline = &t
			}
		case "intervals":
			var exp, dl int64
			if n, err := fmt.Sscanf(m[2], "%d/%d", &exp, &dl); err == nil && n == 2 && exp > 0 && dl >= 0 {
				v.ExpiresIn, v.RotationDeadlineIn = time.Duration(exp)*time.Second, time.Duration(dl)*time.Second
			}
		}
	}
	return v, v.RunnerID > 0
}

// NoteMarker starts the tool's line in a runner's maintenance note.
const NoteMarker = "[runner-bootstrap]"

// Runner is what a created runner's maintenance note records.
type Runner struct {
	// Target is the variable the runner's token is meant for (spec.Target).
	Target string
	// CreatedAt is when the tool created the runner.
	CreatedAt time.Time
}

// Line renders the marker line.
func (r Runner) Line() string {
	return fmt.Sprintf("%s target=%s created=%s", NoteMarker, r.Target, r.CreatedAt.UTC().Format(time.RFC3339))
}

// NoteRoom is how many characters of a user's maintenance note fit beside the marker line for
// target within max characters: the line itself (with the longest creation time) and the
// newline before it, measured on Line, so that the budget follows the format.
func NoteRoom(target string, max int) int {
	longest := Runner{Target: target, CreatedAt: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}
	return max - utf8.RuneCountInString(longest.Line()) - 1
}

// ComposeNote appends the marker line to the user's own maintenance note.
func ComposeNote(userNote string, r Runner) string {
	userNote = strings.TrimRight(userNote, "\n ")
	if userNote == "" {
		return r.Line()
	}
	return userNote + "\n" + r.Line()
}

// ParseNote splits a maintenance note into the user's part and the tool's marker.
// ok is false when the runner was not created by this tool.
func ParseNote(note string) (userNote string, r Runner, ok bool) {
	i := strings.LastIndex(note, NoteMarker)
	if i < 0 {
		return note, Runner{}, false
	}
	userNote = strings.TrimRight(note[:i], "\n ")
	for _, m := range fieldRE.FindAllStringSubmatch(note[i:], -1) {
		switch m[1] {
		case "target":
			r.Target = m[2]
		case "created":
			if t, err := time.Parse(time.RFC3339, m[2]); err == nil {
				r.CreatedAt = t
			}
		}
	}
	return userNote, r, r.Target != ""
}

// AdoptMarker starts the line adopt writes into a runner's maintenance note before it resets
// the token of a runner made in the UI. It is deliberately not NoteMarker: create treats a
// runner carrying NoteMarker for its variable that the variable does not record as an orphan
// of a killed run and deletes it, and a hand-made runner must never be deleted because an
// adoption was interrupted. The next adopt for the same variable reads it and finishes.
const AdoptMarker = "[runner-bootstrap-adopt]"

// AdoptLine renders the pending adoption line for target.
func AdoptLine(target string, started time.Time) string {
	return fmt.Sprintf("%s target=%s started=%s", AdoptMarker, target, started.UTC().Format(time.RFC3339))
}

// ParseAdopt splits a maintenance note into the user's part and a pending adoption's target.
// ok is false when no adoption is pending.
func ParseAdopt(note string) (userNote, target string, ok bool) {
	i := strings.LastIndex(note, AdoptMarker)
	if i < 0 {
		return note, "", false
	}
	userNote = strings.TrimRight(note[:i], "\n ")
	for _, m := range fieldRE.FindAllStringSubmatch(note[i:], -1) {
		if m[1] == "target" {
			target = m[2]
		}
	}
	return userNote, target, target != ""
}
