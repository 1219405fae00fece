package token

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// inputToken finds the runner and personal access tokens a text holds: the prefix and every
// token character after it.
var inputToken = regexp.MustCompile(`(?:glrt-|glpat-)[A-Za-z0-9_\-]+`)

// realSecret is what a registered secret looks like (and cannot be the placeholder itself).
var realSecret = regexp.MustCompile(`^[A-Za-z0-9_\-]{8,}$`)

// FuzzRedact: whatever surrounds them, no glrt- or glpat- token of 20 characters or more that
// is in the input survives redaction, nor does a registered secret; redacting twice changes
// nothing more.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"token glrt-t3_abcdefghijklmnopqrst here",
		`{"token":"glrt-t1_ABCDEFGHIJKLMNOPQRST","token_expires_at":null}`,
		"x_glpat-abcdefghijklmnopqrst.", "glrt-glrt-glrt-aaaaaaaaaaaaaaaaaaa", "prefix_glrtr-aaaaaaaaaaaaaaaa",
		"GR1348941aaaaaaaaaaaaaaaaaaaa", "value=glpat-AAAAAAAAAAAAAAAAAAAA&x=1", "glrt-\u00e9aaaaaaaaaaaaaaaaaaa",
		"a_b_glrt-aaaaaaaaaaaaaaaaaaaaaaaa", "[REDACTED glrt-]aaaaaaaaaaaaaaaaaa",
	} {
		f.Add(s, "custom-prefix-secret-0123")
	}
	f.Fuzz(func(t *testing.T, s, secret string) {
		if len(s) > 4096 || len(secret) > 256 {
			t.Skip("the check below is quadratic; log lines, error messages and tokens are short")
		}
		out := Redact(s)
		for _, tok := range inputToken.FindAllString(s, -1) {
			if len(tok) >= 20 && strings.Contains(out, tok) {
				t.Fatalf("Redact left a token of the input: %q -> %q", s, out)
			}
		}
		if again := Redact(out); again != out {
			t.Fatalf("Redact is not stable: %q -> %q -> %q", s, out, again)
		}
		if !realSecret.MatchString(secret) || strings.Contains(secret, "REDACTED") {
			return
		}
		r := &Redactor{}
		r.Add(secret)
		out = r.Redact(s)
		if strings.Contains(out, secret) {
			t.Fatalf("Redactor left the registered secret in %q -> %q", s, out)
		}
		for _, tok := range inputToken.FindAllString(s, -1) {
			if len(tok) >= 20 && strings.Contains(out, tok) {
				t.Fatalf("Redactor left a token of the input: %q -> %q", s, out)
			}
		}
	})
}

var kinds = map[Kind]bool{
	RunnerAuthentication: true, RunnerRegistered: true, Registration: true, AccessToken: true, JobToken: true,
	DeployToken: true, TriggerToken: true, OAuthSecret: true, FeedToken: true, IncomingEmailToken: true, AgentToken: true, SCIMToken: true,
	FeatureFlagsToken: true, WorkspaceToken: true, Unknown: true, Empty: true,
}

// FuzzClassify: every string gets one of the known kinds, surrounding white space does not
// change it, a runner or registration token, an empty one or one holding white space is never
// accepted as the access token, and a refusal is one line that does not repeat the token.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"", " ", "glrt-t3_abcdefghijklmnopqrst", "glrtr-abcdefghijklmnopqrst", "GR1348941abcdefghijklmnopqrst",
		"glpat-abcdefghijklmnopqrst", "glcbt-64_abcdefghijkl", "gldt-abcdefghijkl", "glptt-abcdefghijkl",
		"gloas-abcdefghijkl", "glft-abcdefghijkl", "mycorp_glrt-abcdefghijkl", "64_abcdefghijklmnopqrst",
		"glpat-abc def", "glpat-abcdefghijklmnopqrst\n", "\tglrt-x", "glpat-abcdefghijklmnopqrst\u00a0",
	} {
		f.Add(s, "")
	}
	f.Add("64_jobtokenvalue123456", "64_jobtokenvalue123456")
	f.Fuzz(func(t *testing.T, s, jobToken string) {
		k := Classify(s)
		if !kinds[k] {
			t.Fatalf("Classify(%q) = %q, not a known kind", s, k)
		}
		if k2 := Classify(" \t" + s + "\r\n"); k2 != k {
			t.Fatalf("white space changed the kind of %q: %q vs %q", s, k, k2)
		}
		trimmed := strings.TrimSpace(s)
		if strings.HasPrefix(trimmed, "glrt-") && k != RunnerAuthentication {
			t.Fatalf("Classify(%q) = %q, want %q", s, k, RunnerAuthentication)
		}
		if IsRunnerToken(s) != (k == RunnerAuthentication || k == RunnerRegistered) {
			t.Fatalf("IsRunnerToken(%q) disagrees with Classify (%q)", s, k)
		}
		err := CheckAccessToken(s, jobToken)
		switch k {
		case RunnerAuthentication, RunnerRegistered, Registration, JobToken, Empty:
			if err == nil {
				t.Fatalf("CheckAccessToken accepted %q (%s)", s, k)
			}
		}
		if strings.IndexFunc(s, unicode.IsSpace) >= 0 && err == nil {
			t.Fatalf("CheckAccessToken accepted %q, which holds white space", s)
		}
		if jobToken != "" && s == jobToken && err == nil {
			t.Fatalf("CheckAccessToken accepted the job token %q", s)
		}
		if err != nil {
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("the refusal is not one line: %q", msg)
			}
			if len(trimmed) >= 8 && strings.Contains(msg, trimmed) {
				t.Fatalf("the refusal repeats the token: %q", msg)
			}
		}
	})
}
