// Package token knows the kinds of GitLab tokens by their shape, refuses the wrong kind as an
// access token, and redacts anything token-shaped from text as a last line of defence.
package token

import (
	"regexp"
	"strings"
	"unicode"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// Kind is what a token is, judged by its prefix.
type Kind string

// Token kinds. The names are what the user is told.
const (
	RunnerAuthentication Kind = "a runner authentication token (glrt-)"
	RunnerRegistered     Kind = "a runner token from legacy registration (glrtr-)"
	Registration         Kind = "a legacy runner registration token (GR1348941…)"
	AccessToken          Kind = "an access token (glpat-)"
	JobToken             Kind = "a CI job token"
	DeployToken          Kind = "a deploy token (gldt-)"
	TriggerToken         Kind = "a pipeline trigger token (glptt-)"
	OAuthSecret          Kind = "an OAuth application secret (gloas-)"
	FeedToken            Kind = "a feed token (glft-)"
	OtherGitLab          Kind = "a GitLab token of another kind"
	Unknown              Kind = "a token without a known prefix"
	Empty                Kind = "an empty token"
)

// prefixes in match order: longer prefixes first (glrtr- before glrt-).
var prefixes = []struct {
	prefix string
	kind   Kind
}{
	{"glrtr-", RunnerRegistered},
	{"glrt-", RunnerAuthentication},
	{"GR1348941", Registration},
	{"glpat-", AccessToken},
	{"glcbt-", JobToken},
	{"gldt-", DeployToken},
	{"glptt-", TriggerToken},
	{"gloas-", OAuthSecret},
	{"glft-", FeedToken},
	{"glimt-", OtherGitLab},
	{"glagent-", OtherGitLab},
	{"glsoat-", OtherGitLab},
	{"glffct-", OtherGitLab},
	{"glwt-", OtherGitLab},
}

// Classify tells what kind of token s is. A self-managed instance may prepend its own
// instance prefix, so runner tokens are recognised by "glrt" anywhere in the value.
func Classify(s string) Kind {
	s = strings.TrimSpace(s)
	if s == "" {
		return Empty
	}
	for _, p := range prefixes {
		if strings.HasPrefix(s, p.prefix) {
			return p.kind
		}
	}
	switch {
	case strings.Contains(s, "glrtr-"):
		return RunnerRegistered
	case strings.Contains(s, "glrt-"):
		return RunnerAuthentication
	case strings.Contains(s, "glpat-"):
		return AccessToken
	}
	return Unknown
}

// CheckAccessToken refuses a token that cannot call the API as a user: runner tokens,
// registration tokens and CI job tokens. jobToken is the job's CI_JOB_TOKEN, if any, so an
// unprefixed job token copied into GITLAB_TOKEN is recognised too.
func CheckAccessToken(s, jobToken string) error {
	const need = "expected a personal, group or project access token (glpat-) with the api and create_runner scopes"
	if s == "" {
		return fail.Usagef("no access token: set GITLAB_TOKEN or pass --token-file; %s", need)
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return fail.Usagef("the access token contains white space (a trailing newline in a file is removed, others are not): %s", need)
	}
	kind := Classify(s)
	if jobToken != "" && s == jobToken {
		kind = JobToken
	}
	switch kind {
	case Empty:
		return fail.Usagef("no access token: set GITLAB_TOKEN or pass --token-file; %s", need)
	case RunnerAuthentication, RunnerRegistered, Registration, JobToken, DeployToken, TriggerToken, FeedToken, OAuthSecret:
		return fail.Usagef("GITLAB_TOKEN holds %s, which cannot create runners or write CI/CD variables: %s", kind, need)
	}
	return nil
}

// IsRunnerToken reports whether s looks like a runner authentication token.
func IsRunnerToken(s string) bool {
	k := Classify(s)
	return k == RunnerAuthentication || k == RunnerRegistered
}

// shapeRE matches token-shaped strings anywhere in text.
var shapeRE = regexp.MustCompile(`(?:[A-Za-z0-9]+_)?(?:glrtr-|glrt-|glpat-|glcbt-|gldt-|glptt-|gloas-|glft-|glimt-|glagent-|glsoat-|glffct-|glwt-)[A-Za-z0-9_.\-]{6,}|GR1348941[A-Za-z0-9_\-]{6,}`)

// Redact replaces every token-shaped substring of s with a placeholder naming its prefix.
func Redact(s string) string {
	return shapeRE.ReplaceAllStringFunc(s, func(m string) string {
		for _, p := range prefixes {
			if i := strings.Index(m, p.prefix); i >= 0 {
				return "[REDACTED " + p.prefix + "]"
			}
		}
		return "[REDACTED]"
	})
}

// Redactor redacts token shapes and, in addition, exact secret values that have no known
// prefix (an access token with a custom prefix, a job token).
type Redactor struct {
	secrets []string
}

// Add registers secret values to redact. Short values are ignored: they would redact
// ordinary words and are not tokens.
func (r *Redactor) Add(secrets ...string) {
	for _, s := range secrets {
		if len(s) >= 8 {
			r.secrets = append(r.secrets, s)
		}
	}
}

// Redact returns s with token shapes and registered secrets replaced.
func (r *Redactor) Redact(s string) string {
	if r != nil {
		for _, sec := range r.secrets {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return Redact(s)
}
