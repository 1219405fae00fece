package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// roundTripLatency is added to every request while a count is taken. It is far above what
// the client and the fake spend on a request, so requests sent together overlap and
// requests sent one after another do not: the count of waves does not depend on the speed of
// the machine (nothing here measures a duration).
const roundTripLatency = 300 * time.Millisecond

// waves groups the requests a run made into round trips: a request that starts after every
// request of the current wave has ended starts the next wave. Each request is "METHOD path"
// with the API prefix cut, and each wave is sorted.
func waves(reqs []gitlabfake.Request) [][]string {
	slices.SortFunc(reqs, func(a, b gitlabfake.Request) int { return a.Start.Compare(b.Start) })
	var out [][]string
	var end time.Time
	for _, r := range reqs {
		if len(out) == 0 || r.Start.After(end) {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], r.Method+" "+strings.TrimPrefix(r.Path, "/api/v4"))
		if r.End.After(end) {
			end = r.End
		}
	}
	for _, w := range out {
		slices.Sort(w)
	}
	return out
}

// countRun runs the binary with the latency injected and returns its waves of requests.
func countRun(t *testing.T, tg *target, args ...string) [][]string {
	t.Helper()
	tg.fake.ResetRequests()
	tg.fake.SetLatency(roundTripLatency)
	defer tg.fake.SetLatency(0)
	tg.run(t, tg.seed.MaintainerToken, nil, args...).Assert(t, icmd.Success)
	w := waves(tg.fake.Requests())
	t.Logf("%s: %d requests in %d round trips: %v", args[0], len(slices.Concat(w...)), len(w), w)
	return w
}

// TestRoundTrips counts, at the fake, what a first create, an unchanged re-run and a rotate
// ask GitLab: which requests, and how many sequential round trips (waves of requests in
// flight together). Independent reads go out together: the variable with the owner's runner
// list, the recorded runner with the markers of candidate orphans, the read-back with the
// list of older marked runners.
func TestRoundTrips(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	create := []string{"create", "--project-id", "42", "--description", "round trips"}
	const (
		project  = "GET /projects/42"
		variable = "GET /projects/42/variables/RUNNER_TOKEN"
		runners  = "GET /projects/42/runners"
	)

	first := countRun(t, tg, create...)
	id := tg.fake.Runners()[0].ID
	assert.DeepEqual(t, first, [][]string{
		{"GET /metadata"}, // the version decides what may be written, before any write
		{project},
		{runners, variable},
		{"POST /user/runners"},
		{runners}, // a newer marked runner means a concurrent run wins: this one stores nothing
		{"POST /projects/42/variables"},
		{variable},          // masked? (a token GitLab stored unmasked is deleted at once)
		{runners, variable}, // read-back, and the older marked runners to delete
	})

	rerun := countRun(t, tg, create...) // reads only
	assert.DeepEqual(t, rerun, [][]string{
		{"GET /metadata"},
		{project},
		{runners, variable},
		{fmt.Sprintf("GET /runners/%d", id)}, // the recorded runner, through the trust check
	})

	rotate := countRun(t, tg, "rotate", "--project-id", "42")
	assert.DeepEqual(t, rotate, [][]string{
		{"GET /metadata"}, // the version: managers route, rotation deadline
		{project},
		{variable},
		{fmt.Sprintf("GET /runners/%d", id)},
		{fmt.Sprintf("GET /runners/%d/managers", id)}, // more than one active manager is said
		{"PUT /projects/42/variables/RUNNER_TOKEN"},   // rotation_pending: the variable is writable
		{fmt.Sprintf("POST /runners/%d/reset_authentication_token", id)},
		{"PUT /projects/42/variables/RUNNER_TOKEN"}, // the new token
		{"POST /runners/verify"},                    // it is the runner's current one
		{"DELETE /runners/managers"},                // the manager the check recorded
		{runners},                                   // leftover marked runners (a killed create or replacement)
	})
}
