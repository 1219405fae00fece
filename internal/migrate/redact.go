package migrate

import (
	"fmt"
	"regexp"
	"strings"
)

// tokenRE matches every GitLab token whose kind shows in its text: runner authentication tokens
// (glrt-, glrtr-, with an optional instance prefix such as acme-glrt-), legacy registration tokens
// (GR1348941…) and the other gl*- prefixes. Registration tokens from before GitLab 15.x have no
// prefix; those are only found through the flag or key that carries them.
var tokenRE = regexp.MustCompile(`[A-Za-z0-9_\-]*(?:glrtr|glrt|glpat|glcbt|gldt|glptt|gloas|glft|glimt|glagent|glsoat|glffct|glwt)-[A-Za-z0-9_.\-]+|GR1348941[A-Za-z0-9_\-]+`)

// minSecretLen is the shortest token value scrubbed by value rather than by pattern: shorter
// values are no real token, and replacing them everywhere would mangle unrelated text.
const minSecretLen = 8

// tokenKind names the kind of a token found by tokenRE, for messages that must not show it.
func tokenKind(tok string) string {
	switch {
	case strings.Contains(tok, "glrt"):
		return "runner authentication token"
	case strings.HasPrefix(tok, "GR1348941"):
		return "registration token"
	case strings.Contains(tok, "glpat-"):
		return "access token"
	case strings.Contains(tok, "glcbt-"):
		return "CI job token"
	case strings.Contains(tok, "gldt-"):
		return "deploy token"
	case strings.Contains(tok, "glptt-"):
		return "pipeline trigger token"
	case strings.Contains(tok, "gloas-"):
		return "OAuth application secret"
	default:
		return "GitLab token"
	}
}

// label is what replaces a token in anything this package returns.
func label(kind string) string { return "[" + kind + "]" }

// scrub replaces every token in s by its kind.
func scrub(s string) string {
	if !strings.Contains(s, "gl") && !strings.Contains(s, "GR1348941") {
		return s
	}
	return tokenRE.ReplaceAllStringFunc(s, func(t string) string { return label(tokenKind(t)) })
}

// hasToken reports whether s contains a token.
func hasToken(s string) bool { return tokenRE.MatchString(s) }

// firstTokenKind returns the kind of the first token in s, or "".
func firstTokenKind(s string) string {
	if t := tokenRE.FindString(s); t != "" {
		return tokenKind(t)
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
