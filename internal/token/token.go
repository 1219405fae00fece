// Package token knows the kinds of GitLab tokens by their shape, refuses the wrong kind as an
// access token, and redacts anything token-shaped from text as a last line of defence.
package token

import (
	"regexp"
	"slices"
	"strings"
	"unicode"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// Kind is what a token is, judged by its prefix. Its text is what the user is told.
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
	IncomingEmailToken   Kind = "an incoming email token (glimt-)"
	AgentToken           Kind = "a GitLab agent for Kubernetes token (glagent-)"
	SCIMToken            Kind = "a SCIM token (glsoat-)"
	FeatureFlagsToken    Kind = "a feature flags client token (glffct-)"
	WorkspaceToken       Kind = "a workspace token (glwt-)"
	Unknown              Kind = "a token without a known prefix"
	Empty                Kind = "an empty token"
)

// Shape is one row of the token table: the prefix GitLab gives a kind of token and every name
// this program has for it. It is the only place that knows what a token looks like.
type Shape struct {
	// Prefix is the text every token of the kind carries, such as "glrt-".
	Prefix string
	// Kind is the phrase users are told ("holds a runner authentication token (glrt-)").
	Kind Kind
	// Label is the short noun that replaces a token in migrate's output and messages.
	Label string
	// Explain is the identifier explain reports for the kind (its JSON "kind").
	Explain string
	// Inside means GitLab may put an instance or partition prefix before Prefix (acme-glrt-…),
	// so the prefix is recognised inside a word, not only at its start.
	Inside bool
}

// shapes is the token table. Where one prefix starts another, the longer comes first
// (glrtr- before glrt-).
var shapes = []Shape{
	{"glrtr-", RunnerRegistered, "runner authentication token", "runner_token_from_registration", true},
	{"glrt-", RunnerAuthentication, "runner authentication token", "runner_authentication_token", true},
	{"GR1348941", Registration, "registration token", "registration_token", false},
	{"glpat-", AccessToken, "access token", "access_token", true},
	{"glcbt-", JobToken, "CI job token", "job_token", true},
	{"gldt-", DeployToken, "deploy token", "deploy_token", true},
	{"glptt-", TriggerToken, "pipeline trigger token", "trigger_token", true},
	{"gloas-", OAuthSecret, "OAuth application secret", "oauth_application_secret", true},
	{"glft-", FeedToken, "feed token", "other_gitlab_token", true},
	{"glimt-", IncomingEmailToken, "incoming email token", "other_gitlab_token", true},
	{"glagent-", AgentToken, "agent token", "other_gitlab_token", true},
	{"glsoat-", SCIMToken, "SCIM token", "other_gitlab_token", true},
	{"glffct-", FeatureFlagsToken, "feature flags client token", "other_gitlab_token", true},
	{"glwt-", WorkspaceToken, "workspace token", "other_gitlab_token", true},
}

// Shapes returns the token table, longer prefixes before the prefixes they start with.
func Shapes() []Shape { return slices.Clone(shapes) }

// Lookup returns the row of the table whose prefix s carries: at its start, or, for the kinds
// GitLab may prefix further, anywhere in it (the leftmost one).
func Lookup(s string) (Shape, bool) {
	for _, sh := range shapes {
		if strings.HasPrefix(s, sh.Prefix) {
			return sh, true
		}
	}
	best, at := Shape{}, -1
	for _, sh := range shapes {
		if i := strings.Index(s, sh.Prefix); sh.Inside && i >= 0 && (at < 0 || i < at) {
			best, at = sh, i
		}
	}
	return best, at >= 0
}

// Classify tells what kind of token s is. A self-managed instance may prepend its own
// instance prefix, so a GitLab prefix is recognised anywhere in the value.
func Classify(s string) Kind {
	s = strings.TrimSpace(s)
	if s == "" {
		return Empty
	}
	if sh, ok := Lookup(s); ok {
		return sh.Kind
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

// Match is one token-shaped substring: s[Start:End], found by its Shape.
type Match struct {
	Start, End int
	Shape      Shape
	// Tail is how many characters follow the prefix.
	Tail int
}

// shapeRE matches token-shaped strings anywhere in text: a prefix from the table, any
// instance prefix before it (for the kinds that can have one) and every token character after.
var shapeRE = func() *regexp.Regexp {
	var inside, start []string
	for _, sh := range shapes {
		if sh.Inside {
			inside = append(inside, regexp.QuoteMeta(sh.Prefix))
		} else {
			start = append(start, regexp.QuoteMeta(sh.Prefix))
		}
	}
	return regexp.MustCompile(`[A-Za-z0-9_\-]*(?:` + strings.Join(inside, "|") + `)[A-Za-z0-9_.\-]*|(?:` + strings.Join(start, "|") + `)[A-Za-z0-9_\-]*`)
}()

// Find returns the token-shaped substrings of s, in order, that have at least minTail
// characters after their prefix. Callers that scrub what a user wrote take short tails too;
// the last line of defence in logs takes MinTail, so that words such as "glrt-…" in help
// texts survive.
func Find(s string, minTail int) []Match {
	var out []Match
	for _, loc := range shapeRE.FindAllStringIndex(s, -1) {
		m := s[loc[0]:loc[1]]
		sh, ok := Lookup(m)
		if !ok {
			continue
		}
		tail := len(m) - strings.Index(m, sh.Prefix) - len(sh.Prefix)
		if tail >= minTail {
			out = append(out, Match{Start: loc[0], End: loc[1], Shape: sh, Tail: tail})
		}
	}
	return out
}

// Replace returns s with every match of Find(s, minTail) replaced by with(match).
func Replace(s string, minTail int, with func(Match) string) string {
	ms := Find(s, minTail)
	if len(ms) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range ms {
		b.WriteString(s[last:m.Start])
		b.WriteString(with(m))
		last = m.End
	}
	b.WriteString(s[last:])
	return b.String()
}

// MinTail is how many characters after its prefix make a string token-shaped for Redact.
const MinTail = 6

// Redact replaces every token-shaped substring of s with a placeholder naming its prefix.
func Redact(s string) string {
	return Replace(s, MinTail, func(m Match) string { return "[REDACTED " + m.Shape.Prefix + "]" })
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
