package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// TestShardsShareOneBudget: four apply processes (--shard I/4) on one user's rate limit get no
// 429, whether GitLab announces the budget on every answer (each process leaves the others'
// requests in flight as a reserve) or only on a 429 (each paces to a quarter of
// --rate-limit). The throttle's window is 2 s instead of GitLab.com's 60 s (GitLab's
// throttle_*_period_in_seconds) so that the run crosses several windows in seconds.
func TestShardsShareOneBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("paced by a rate limit: about ten seconds")
	}
	for _, tc := range []struct {
		name    string
		headers bool
		flags   []string
	}{
		{"headers on every answer", true, nil},
		// 40 per 2 s is 1,200 a minute; 900 leaves room for each process's burst of one.
		{"headers only on a 429", false, []string{"--rate-limit", "900"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t)
			tg.needFake(t)
			tg.fake.SetThrottle(gitlabfake.Throttle{Requests: 40, Period: 2 * time.Second, HeadersOnEveryAnswer: tc.headers})
			const n = 48
			var b strings.Builder
			b.WriteString("runners:\n")
			for i := range n {
				fmt.Fprintf(&b, "  - project_id: %d\n    description: shard-%02d\n    variable: {key: SHARD_TOKEN_%02d}\n", tg.seed.DeployProjectID, i, i)
			}
			path := writeFleet(t, b.String())

			var wg sync.WaitGroup
			results := make([]*icmd.Result, 4)
			for i := range results {
				wg.Go(func() {
					args := append([]string{"apply", "--file", path, "--shard", fmt.Sprintf("%d/4", i+1), "--concurrency", "4", "--timeout", "2m", "-o", "json"}, tc.flags...)
					results[i] = tg.run(t, tg.seed.OwnerToken, nil, args...)
				})
			}
			wg.Wait()
			created := 0
			for _, r := range results {
				r.Assert(t, icmd.Success)
				created += decodeApply(t, r).Summary.Results["created"]
			}
			assert.Check(t, is.Equal(created, n))
			assert.Check(t, is.Len(tg.fake.Runners(), n))
			assert.Check(t, is.Equal(tg.fake.Count429(), 0))
			assert.Check(t, len(tg.fake.Requests()) > 2*40, "the run needed several windows")
		})
	}
}
