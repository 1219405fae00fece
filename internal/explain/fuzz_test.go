package explain

import (
	"strings"
	"testing"
)

// FuzzExplain checks that Explain never panics, always answers, and never repeats a token of
// its input.
func FuzzExplain(f *testing.F) {
	for _, s := range []string{
		"", "glrt-t3_fake_example0", "acme-glrt-x", "glrtr-fake_example0", "GR1348941fake_example0", "glpat-fake_example0",
		"glcbt-fake_example0", "gldt-x", "glptt-x", "gloas-x", "glft-x", "glimt-x", "glagent-x", "glsoat-x", "glffct-x", "glwt-x",
		"410 Gone - runner registration disallowed", "Runner configuration other than name and executor configuration is reserved",
		"403 Forbidden", `{"error":"insufficient_scope"}`, `{"message":{"value":["is invalid"]}}`,
		"Only new variables can be set as masked and hidden.", `invalid header field value for "Private-Token"`,
		"401 Unauthorized glpat-fake_example0", "token glrt-403 is 403", "\x00\xff", "$CI_JOB_TOKEN",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		e := Explain(input)
		if e.Kind == "" || e.What == "" || len(e.Steps) == 0 {
			t.Fatalf("no explanation for %q: %+v", input, e)
		}
		all := e.Kind + "\n" + e.What + "\n" + strings.Join(e.Steps, "\n")
		for _, tok := range inputTokenRE.FindAllString(input, -1) {
			if strings.Contains(all, tok) {
				t.Fatalf("the explanation repeats the input's token %q:\n%s", tok, all)
			}
		}
	})
}
