package faults

import (
	"strings"
	"testing"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// TestTimeoutsAreNamed: the error names the timeout that ran out, so the user knows which flag
// to raise: one request outliving --request-timeout is not the whole run outliving --timeout.
func TestTimeoutsAreNamed(t *testing.T) {
	cases := []struct {
		name  string
		stall time.Duration
		flags []string
		want  string
		not   string
	}{
		{name: "request timeout", stall: 3 * time.Second, flags: []string{"--request-timeout", "1s", "--max-retries", "0"}, want: "request timeout", not: "--timeout expired"},
		{name: "run timeout", stall: 5 * time.Second, flags: []string{"--timeout", "1s"}, want: "--timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.fake.AddFault(gitlabfake.Fault{Method: "GET", Path: "/projects/*/variables/*", Stall: tc.stall})
			o := w.run(append(createArgs(), tc.flags...)...)
			if o.code != 1 {
				t.Fatalf("want exit 1:\n%s", o)
			}
			last := o.lastLine()
			if !strings.Contains(last, tc.want) || (tc.not != "" && strings.Contains(last, tc.not)) {
				t.Errorf("the error should name the %s (%q), not %q:\n%s", tc.name, tc.want, tc.not, last)
			}
		})
	}
}
