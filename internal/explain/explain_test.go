package explain

import (
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

func TestExplain(t *testing.T) {
	cases := []struct {
		name, input, kind string
		whatHas, stepHas  string
	}{
		{"runner token", "glrt-t3_fake_example0", KindRunnerToken, "runner authentication token (glrt-…)", "gitlab-runner register"},
		{"runner token with instance prefix", "acme-glrt-t3_fake_example0\n", KindRunnerToken, "runner manager", "runner-bootstrap rotate"},
		{"routable runner token", "glrt-cHJvamVjdF9pZD0x.01.1a0fake00", KindRunnerToken, "rotates it by itself", "RUNNER_TOKEN"},
		{"runner token from registration", "glrtr-fake_example0", KindRegisteredRunnerToken, "registered with a legacy registration token", "runner-bootstrap migrate"},
		{"registration token", "GR1348941fake_example0", KindRegistrationToken, "removed in 20.0", "runner-bootstrap migrate"},
		{"access token", "glpat-fake_example0", KindAccessToken, "GITLAB_TOKEN", "create_runner scope"},
		{"job token", "glcbt-fake_example0", KindJobToken, "job token", "GITLAB_TOKEN"},
		{"job token variable", "$CI_JOB_TOKEN", KindJobToken, "401", "access token"},
		{"deploy token", "gldt-fake_example0", KindDeployToken, "deploy token", "create_runner"},
		{"trigger token", "glptt-fake_example0", KindTriggerToken, "start pipelines", "create_runner"},
		{"oauth secret", "gloas-fake_example0", KindOAuthSecret, "OAuth application", "create_runner"},
		{"feed token", "glft-fake_example0", KindOtherToken, "feed token", "glrt-"},
		{"agent token", "glagent-fake_example0", KindOtherToken, "agent", "create_runner"},
		{"410 from gitlab-runner", "ERROR: Registering runner... failed  runner=GR1348941 status=410 Gone - runner registration disallowed\nPANIC: Failed to register the runner.", KindRegistrationDisallowed, "disabled", "runner-bootstrap create"},
		{"410 from the API", `{"message":"410 Gone - runner registration disallowed"}`, KindRegistrationDisallowed, "17.0", "stopgap"},
		{"reserved configuration", "FATAL: Runner configuration other than name, description, and executor configuration is reserved and cannot be specified when registering with a runner token.", KindReservedConfiguration, "server-side settings", "runner-bootstrap migrate --register-command"},
		{"reserved, older wording", "Runner configuration other than name and executor configuration is reserved (specifically --locked, --access-level, --run-untagged, --maximum-timeout, --paused, --tag-list, and --maintenance-note)", KindReservedConfiguration, "--maximum-timeout", "runners.maximumTimeout"},
		{"403 from verify", "ERROR: Verifying runner... is not valid  runner=t3_fake status=POST https://gitlab.example.com/api/v4/runners/verify: 403 Forbidden", KindRunnerTokenRejected, "expired", "runner-bootstrap rotate"},
		{"bare 403", "403 Forbidden", KindRunnerTokenRejected, "/runners/verify", "runner-bootstrap status"},
		{"insufficient scope", `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api create_runner"}`, KindInsufficientScope, "scope", "create_runner scope"},
		{"insufficient permissions", `403 {"message":"403 Forbidden - Insufficient permissions"}`, KindInsufficientPermissions, "role", "Maintainer"},
		{"masked value invalid", `400 {"message":{"value":["is invalid"]}}`, KindMaskedValueInvalid, "at least 8 characters", "newline"},
		{"hidden on update", `{"message":{"base":["Only new variables can be set as masked and hidden."]}}`, KindHiddenOnlyOnCreate, "created", "--no-variable-hidden"},
		{"visibility cannot change", "The visibility setting cannot be changed for masked and hidden variables.", KindHiddenOnlyOnCreate, "never changed", "rotate"},
		{"trailing newline", `Get "https://gitlab.example.com/api/v4/user": net/http: invalid header field value for "Private-Token"`, KindTrailingNewline, "newline", "printf"},
		{"check registration token", "ERROR: Registering runner... forbidden (check registration token)", KindRegistrationRejected, "registration token", "runner-bootstrap create"},
		{"401", `401 {"message":"401 Unauthorized"}`, KindUnauthorized, "access token", "GITLAB_TOKEN"},
		{"expired access token", `{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`, KindUnauthorized, "expired", "create a new one"},
		{"token that spells 403", "glrt-403fake_example0", KindRunnerToken, "runner authentication token", "register"},
		{"token inside a sentence", "my runner uses GR1348941fake_example0 in its values", KindRegistrationToken, "registration token", "migrate"},
		{"unknown", "hello there", KindUnknown, "does not recognise", "410 Gone"},
		{"empty", "   ", KindUnknown, "does not recognise", "prefix"},
		{"unprefixed secret", "s3cr3tvalue-with-no-prefix", KindUnknown, "does not recognise", "no prefix"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := Explain(c.input)
			assert.Check(t, is.Equal(e.Kind, c.kind))
			assert.Check(t, is.Contains(e.What, c.whatHas))
			assert.Check(t, is.Contains(strings.Join(e.Steps, "\n"), c.stepHas))
			assert.Check(t, len(e.Steps) > 0)
			assertNotEchoed(t, c.input, e)
		})
	}
}

// Every explanation ends its sentences properly and is complete.
func TestExplanationsAreSentences(t *testing.T) {
	for _, in := range []string{"glrt-x", "glrtr-x", "GR1348941x", "glpat-x", "glcbt-x", "gldt-x", "glptt-x", "gloas-x", "glft-x",
		"glimt-x", "glagent-x", "glsoat-x", "glffct-x", "glwt-x", "410 Gone", "is reserved", "check registration token", "insufficient_scope",
		"only new variables can be set as masked and hidden", "invalid header field", "value is invalid", "403 insufficient permissions",
		"403", "401", "?"} {
		e := Explain(in)
		assert.Check(t, e.Kind != "", in)
		for _, s := range append([]string{e.What}, e.Steps...) {
			assert.Check(t, strings.HasSuffix(s, ".") || strings.HasSuffix(s, ", or"), "%q: %q", in, s)
		}
	}
}

var inputTokenRE = regexp.MustCompile(`[A-Za-z0-9_\-]*(?:glrtr|glrt|glpat|glcbt|gldt|glptt|gloas|glft|glimt|glagent|glsoat|glffct|glwt)-[A-Za-z0-9_.\-]+|GR1348941[A-Za-z0-9_\-]+`)

// assertNotEchoed checks that no token of the input, nor the input itself, shows in e.
func assertNotEchoed(t *testing.T, input string, e Explanation) {
	t.Helper()
	all := e.Kind + "\n" + e.What + "\n" + strings.Join(e.Steps, "\n")
	for _, tok := range inputTokenRE.FindAllString(input, -1) {
		assert.Check(t, !strings.Contains(all, tok), "token %q echoed", tok)
	}
	// A variable name such as $CI_JOB_TOKEN is no secret, and the texts may name it.
	if in := strings.TrimSpace(input); len(in) >= 12 && !strings.ContainsAny(in, " \n$") {
		assert.Check(t, !strings.Contains(all, in), "input echoed")
	}
}

// TestEveryTokenKindIsExplained: each row of the token table is explained under the identifier
// the table gives it, in a sentence of its own that does not repeat the token.
func TestEveryTokenKindIsExplained(t *testing.T) {
	whats := map[string]bool{}
	for _, sh := range token.Shapes() {
		in := sh.Prefix + "Zz9fake_example0"
		e := Explain(in)
		assert.Check(t, is.Equal(e.Kind, sh.Explain), sh.Prefix)
		assert.Check(t, is.Contains(e.What, sh.Prefix), "the explanation names the prefix %s", sh.Prefix)
		assert.Check(t, !strings.Contains(e.What+strings.Join(e.Steps, " "), "Zz9fake"), sh.Prefix)
		assert.Check(t, !whats[e.What], "%s shares its explanation with another kind", sh.Prefix)
		whats[e.What] = true
	}
}
