package token

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

func TestClassify(t *testing.T) {
	cases := map[string]Kind{
		"glrt-t3_abcDEF123-xyz_0987q":  RunnerAuthentication,
		"glrtr-abcdefghijklmnopqrst":   RunnerRegistered,
		"myco_glrt-t1_abcdefghijklmno": RunnerAuthentication,
		"GR1348941abcdefghijklmnop":    Registration,
		"glpat-abcdefghijklmnopqrst":   AccessToken,
		"glcbt-64_abcdefghijklmnopq":   JobToken,
		"gldt-abcdefghijklmnopqrst":    DeployToken,
		"plain-old-token-value":        Unknown,
		"  ":                           Empty,
	}
	for in, want := range cases {
		assert.Check(t, is.Equal(Classify(in), want), in)
	}
}

func TestCheckAccessToken(t *testing.T) {
	assert.NilError(t, CheckAccessToken("glpat-abcdefghijklmnopqrst", ""))
	assert.NilError(t, CheckAccessToken("customprefix-abcdefghijkl", ""))

	for _, tc := range []struct{ tok, job, want string }{
		{"glrt-t3_abcdefghijklmnopqrst", "", "runner authentication token"},
		{"GR1348941abcdefghijklmnop", "", "legacy runner registration token"},
		{"glcbt-64_abcdefghijklmnopq", "", "CI job token"},
		{"abcdefghijklmnopqrst", "abcdefghijklmnopqrst", "CI job token"},
		{"", "", "no access token"},
		{"glpat-abc def", "", "white space"},
	} {
		err := CheckAccessToken(tc.tok, tc.job)
		assert.Check(t, is.ErrorContains(err, tc.want))
		assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage))
		if tc.tok != "" {
			assert.Check(t, !bytes.Contains([]byte(err.Error()), []byte(tc.tok)), "error must not echo the token")
		}
	}
}

func TestRedact(t *testing.T) {
	in := "token glrt-t3_abcDEF123-xyz_0987q and glpat-AbCdEfGhIjKlMnOpQrSt, reg GR1348941abcdefghij; ok glrt-"
	got := Redact(in)
	assert.Equal(t, got, "token [REDACTED glrt-] and [REDACTED glpat-], reg [REDACTED GR1348941]; ok glrt-")

	var r Redactor
	r.Add("s3cr3t-no-prefix", "short")
	assert.Equal(t, r.Redact("a s3cr3t-no-prefix short"), "a [REDACTED] short")
}

func TestFormatterRedactsFieldsAndMessages(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	r := &Redactor{}
	r.Add("unprefixed-secret-1")
	log.SetFormatter(&Formatter{Inner: &logrus.JSONFormatter{}, Redactor: r})
	log.WithField("tok", "glrt-t3_abcdefghijklmnopqrst").Info("using unprefixed-secret-1")
	assert.Check(t, !bytes.Contains(buf.Bytes(), []byte("abcdefghijklmnopqrst")))
	assert.Check(t, !bytes.Contains(buf.Bytes(), []byte("unprefixed-secret-1")))
	assert.Check(t, bytes.Contains(buf.Bytes(), []byte("[REDACTED glrt-]")))
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("glrt-t3_abcdefghijklmnopqrst")
	for _, got := range []string{
		fmtS("%v", s), fmtS("%s", s), fmtS("%q", s), fmtS("%#v", s), fmtS("%+v", struct{ T Secret }{s}), jsonS(struct{ T Secret }{s}),
	} {
		assert.Check(t, !bytes.Contains([]byte(got), []byte("abcdefghij")), got)
	}
	assert.Equal(t, s.Reveal(), "glrt-t3_abcdefghijklmnopqrst")
}

// planted are real-looking tokens of every kind GitLab issues, written out by hand: they are
// the oracle for the table, so dropping or mistyping a prefix there fails here.
var planted = []struct {
	tok  string
	kind Kind
}{
	{"glrt-t3_AbCdEfGhIjKlMnOpQrSt", RunnerAuthentication},
	{"acme-glrt-t1_AbCdEfGhIjKlMnOp", RunnerAuthentication},
	{"glrt-cHJvamVjdF9pZD0x.01.1a0b2c3d4", RunnerAuthentication},
	{"glrtr-AbCdEfGhIjKlMnOpQrSt", RunnerRegistered},
	{"GR1348941AbCdEfGhIjKlMnOpQrSt", Registration},
	{"glpat-AbCdEfGhIjKlMnOpQrSt", AccessToken},
	{"corp_glpat-AbCdEfGhIjKlMnOpQrSt", AccessToken},
	{"glcbt-64_AbCdEfGhIjKlMnOpQrSt", JobToken},
	{"gldt-AbCdEfGhIjKlMnOpQrSt", DeployToken},
	{"glptt-AbCdEfGhIjKlMnOpQrSt", TriggerToken},
	{"gloas-AbCdEfGhIjKlMnOpQrSt", OAuthSecret},
	{"glft-AbCdEfGhIjKlMnOpQrSt", FeedToken},
	{"glimt-AbCdEfGhIjKlMnOpQrSt", IncomingEmailToken},
	{"glagent-AbCdEfGhIjKlMnOpQrSt", AgentToken},
	{"glsoat-AbCdEfGhIjKlMnOpQrSt", SCIMToken},
	{"glffct-AbCdEfGhIjKlMnOpQrSt", FeatureFlagsToken},
	{"glwt-AbCdEfGhIjKlMnOpQrSt", WorkspaceToken},
}

func TestPlantedTokensAreClassifiedAndRedacted(t *testing.T) {
	for _, p := range planted {
		assert.Check(t, is.Equal(Classify(p.tok), p.kind), p.tok)
		for _, text := range []string{p.tok, "a " + p.tok + " b", `{"token":"` + p.tok + `"}`, "url?t=" + p.tok + "&x=1", p.tok + "."} {
			got := Redact(text)
			assert.Check(t, !strings.Contains(got, "AbCdEfGhIj"), "%q leaked in %q", p.tok, got)
			assert.Check(t, is.Contains(got, "[REDACTED "), text)
		}
		ms := Find("x "+p.tok+" y", 1)
		assert.Check(t, is.Len(ms, 1), p.tok)
		if len(ms) == 1 {
			assert.Check(t, is.Equal(ms[0].Shape.Kind, p.kind), p.tok)
			assert.Check(t, is.Equal(ms[0].Start, 2), p.tok)
			assert.Check(t, is.Equal(ms[0].End, 2+len(p.tok)), p.tok)
		}
	}
}

func TestEveryRowHasAPlantedToken(t *testing.T) {
	seen := map[Kind]bool{}
	for _, p := range planted {
		seen[p.kind] = true
	}
	for _, sh := range Shapes() {
		assert.Check(t, seen[sh.Kind], "no planted token for %s: add one to planted", sh.Prefix)
		assert.Check(t, sh.Label != "" && sh.Explain != "", sh.Prefix)
	}
}

func TestFindKeepsWordsThatOnlyNameAPrefix(t *testing.T) {
	in := "expected a runner authentication token (glrt-), or glrt-… from create; glpat-x is short"
	assert.Equal(t, Redact(in), in)
	assert.Check(t, is.Len(Find(in, 1), 1), "glpat-x has a one-character tail")
	assert.Check(t, is.Len(Find(in, 0), 3))
}
