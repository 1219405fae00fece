package migrate

import (
	"fmt"
	"strings"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// minSecretLen is the shortest token value scrubbed by value rather than by pattern: shorter
// values are no real token, and replacing them everywhere would mangle unrelated text.
const minSecretLen = 8

// minTokenTail is how many characters after a GitLab prefix make a token here. What a user
// hands to migrate is scrubbed eagerly: one character is enough (token.Redact, the last line of
// defence in logs, asks for more so that words such as "glrt-…" survive).
const minTokenTail = 1

// label is what replaces a token in anything this package returns.
func label(kind string) string { return "[" + kind + "]" }

// scrub replaces every token in s by its kind. Registration tokens from before GitLab 15.x have
// no prefix; those are only found through the flag or key that carries them.
func scrub(s string) string {
	return token.Replace(s, minTokenTail, func(m token.Match) string { return label(m.Shape.Label) })
}

// hasToken reports whether s contains a token.
func hasToken(s string) bool { return len(token.Find(s, minTokenTail)) > 0 }

// firstTokenKind returns the kind of the first token in s, or "".
func firstTokenKind(s string) string {
	if ms := token.Find(s, minTokenTail); len(ms) > 0 {
		return ms[0].Shape.Label
	}
	return ""
}

// show quotes a user value for an error message, unless it holds a token: then only its kind shows.
// Long values are cut, so a message stays one readable sentence.
func show(s string) string {
	if k := firstTokenKind(s); k != "" {
		return label(k)
	}
	const max = 60
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// scrubSecrets replaces, in s, every token found by pattern and every literal secret value
// (those too short to be real tokens are left alone).
func scrubSecrets(s string, secrets []secretValue) string {
	// A replacement could, in theory, complete another secret with its neighbours: repeat
	// until nothing changes (each round only shortens or keeps the secrets' occurrences).
	for range 4 {
		before := s
		for _, sv := range secrets {
			if len(sv.value) >= minSecretLen && strings.Contains(s, sv.value) {
				s = strings.ReplaceAll(s, sv.value, label(sv.kind))
			}
		}
		s = scrub(s)
		if s == before {
			break
		}
	}
	return s
}

// secretValue is a token value met while parsing, kept only to scrub it from what is returned.
type secretValue struct {
	value string
	kind  string
}
