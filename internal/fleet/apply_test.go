package fleet_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fleet"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// projectFleet is n project runners in project 42, each with its own variable.
func projectFleet(t *testing.T, n int) *fleet.Manifest {
	t.Helper()
	var b strings.Builder
	b.WriteString("runners:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - project_id: 42\n    description: fleet-%04d\n    tag_list: [docker]\n    variable: {key: RUNNER_TOKEN_%04d}\n", i, i)
	}
	return parse(t, b.String())
}

// TestApply200Runners: a first apply of 200 runners costs two writes each plus a few list
// pages; a re-apply writes nothing.
func TestApply200Runners(t *testing.T) {
	e := setup(t)
	m := projectFleet(t, 200)

	p, sum := e.apply(t, e.fleet(8), m, false)
	assert.Check(t, is.Equal(sum.Results["created"], 200), "%+v", sum)
	assert.Check(t, is.Equal(sum.Failed, 0))
	reqs := e.fake.Requests()
	assert.Check(t, is.Equal(writes(reqs), 400), "one POST /user/runners and one POST .../variables per runner")
	assert.Check(t, len(reqs) <= 3*200, "%d requests for 200 runners", len(reqs))
	assert.Check(t, len(reqs) <= 2*200+10, "%d requests: reads are batched", len(reqs))
	assert.Check(t, int(sum.APICalls) <= len(reqs), "a list read in pages is one call")
	gets := map[string]int{}
	for _, r := range reqs {
		if r.Method == "GET" {
			gets[r.Path+"?"+r.Query]++
		}
	}
	// The plan reads the project, its variables and its runners once each (the lists while the
	// project is looked up, as its id is numeric, and so is the version); the read-back both
	// pages of variables.
	assert.Check(t, is.DeepEqual(gets, map[string]int{
		"/api/v4/metadata?":    1,
		"/api/v4/projects/42?": 1,
		"/api/v4/projects/42/runners?page=1&per_page=100&type=project_type": 1,
		"/api/v4/projects/42/variables?page=1&per_page=100":                 2,
		"/api/v4/projects/42/variables?page=2&per_page=100":                 1,
	}))
	assert.Check(t, is.Equal(e.assertStored(t), 200))
	for _, it := range p.Items {
		assert.Check(t, it.RunnerID != 0 && it.Result == "created")
	}
	for _, r := range e.fake.Runners() {
		assert.Check(t, is.DeepEqual(r.TagList, []string{"docker"}))
		assert.Check(t, strings.HasPrefix(r.Description, "fleet-"))
	}

	e.fake.ResetRequests()
	_, sum = e.apply(t, e.fleet(8), m, false)
	assert.Check(t, is.Equal(sum.Results["unchanged"], 200))
	assert.Check(t, is.Equal(e.fake.Writes(), 0), "a re-apply writes nothing")
	// Reads: one GET per runner for what lists do not show (tags, note, owner), plus pages.
	assert.Check(t, len(e.fake.Requests()) <= 200+10, "%d requests", len(e.fake.Requests()))
}

// TestApplyOneFailureDoesNotStopTheOthers: storing one token fails; that entry's runner is
// deleted again (Ensure's rule: no runner whose token is stored nowhere), the rest is applied.
func TestApplyOneFailureDoesNotStopTheOthers(t *testing.T) {
	e := setup(t)
	e.fake.AddFault(gitlabfake.Fault{Method: "POST", Path: "/projects/42/variables", Status: 500, Skip: 3, Times: 1})
	p, sum := e.apply(t, e.fleet(4), projectFleet(t, 10), false)
	assert.Check(t, is.Equal(sum.Failed, 1))
	assert.Check(t, is.Equal(sum.Results["created"], 9))
	assert.Check(t, is.Len(e.fake.Runners(), 9), "the runner whose token could not be stored was deleted")
	assert.Check(t, is.Equal(e.assertStored(t), 9))
	for _, it := range p.Items {
		if it.Result == fleet.ResultFailed {
			assert.Check(t, is.Contains(it.Error, "was deleted again so that no runner is left whose token is stored nowhere"))
		}
	}
	// The next run completes the fleet.
	_, sum = e.apply(t, e.fleet(4), projectFleet(t, 10), false)
	assert.Check(t, is.Equal(sum.Results["created"], 1))
	assert.Check(t, is.Equal(sum.Results["unchanged"], 9))
}

// TestApplyHonoursRetryAfter: a 429 is waited out (Retry-After) and retried, even for a POST.
func TestApplyHonoursRetryAfter(t *testing.T) {
	e := setup(t)
	e.client = client(t, e.seed.URL, e.seed.OwnerToken, false)
	e.fake.AddFault(gitlabfake.Fault{Method: "POST", Path: "/user/runners", Status: 429, RetryAfter: 1, Skip: 2, Times: 1})
	start := time.Now()
	_, sum := e.apply(t, e.fleet(4), projectFleet(t, 6), false)
	assert.Check(t, is.Equal(sum.Results["created"], 6), "%+v", sum)
	assert.Check(t, is.Equal(e.fake.Count429(), 1))
	assert.Check(t, time.Since(start) >= time.Second, "Retry-After: 1 was honoured")
	assert.Check(t, is.Len(e.fake.Runners(), 6), "the rate-limited POST was not carried out twice")
}

// TestApplyUnderRateLimit: the budget gate spends what GitLab announces and waits for the
// next window, so a fleet several windows' worth of requests large gets no 429.
func TestApplyUnderRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("paced by a rate limit: a few seconds")
	}
	e := setup(t)
	e.fake.SetThrottle(gitlabfake.Throttle{Requests: 20, Period: time.Second, HeadersOnEveryAnswer: true})
	e.client = client(t, e.seed.URL, e.seed.OwnerToken, false)
	_, sum := e.apply(t, e.fleet(4), projectFleet(t, 20), false)
	assert.Check(t, is.Equal(sum.Results["created"], 20))
	assert.Check(t, is.Equal(e.fake.Count429(), 0))
	assert.Check(t, len(e.fake.Requests()) > 40, "more requests than one window holds")
}

// racingAPI plays a concurrent run: right after this run stores the token of variable key,
// another run creates its own runner for the same variable and stores that one's token.
type racingAPI struct {
	lifecycle.API
	key   string
	other int64
}

func (r *racingAPI) CreateVariable(ctx context.Context, v gitlab.VarRef, w gitlab.VariableWrite) error {
	if err := r.API.CreateVariable(ctx, v, w); err != nil || v.Key != r.key {
		return err
	}
	nt, err := r.API.CreateRunner(ctx, gitlab.RunnerAttrs{Type: spec.ProjectType, ProjectID: v.OwnerID, RunUntagged: true,
		MaintenanceNote: record.ComposeNote("", record.Runner{Target: v.Target(), CreatedAt: time.Now()})})
	if err != nil {
		return err
	}
	r.other = nt.RunnerID
	desc := record.Variable{RunnerID: nt.RunnerID, TokenSetAt: time.Now()}.Description()
	return r.API.UpdateVariable(ctx, v, gitlab.VariableWrite{Value: &nt.Token, Description: &desc})
}

// TestApplyReadBackAfterConcurrentRun: the batched read-back sees that another run stored its
// runner last; this run deletes the runner it created, so one runner remains, and it is the
// one whose token is stored.
func TestApplyReadBackAfterConcurrentRun(t *testing.T) {
	e := setup(t)
	race := &racingAPI{API: e.client, key: "RUNNER_TOKEN_0002"}
	f := e.fleet(2)
	f.API = race
	p, sum := e.apply(t, f, projectFleet(t, 4), false)
	assert.Check(t, is.Equal(sum.Results[fleet.ResultSuperseded], 1), "%+v", sum)
	assert.Check(t, is.Equal(sum.Failed, 0))
	assert.Check(t, is.Len(e.fake.Runners(), 4))
	assert.Check(t, is.Equal(e.assertStored(t), 4))
	for _, it := range p.Items {
		if it.Result == fleet.ResultSuperseded {
			assert.Check(t, is.Equal(it.RunnerID, race.other))
			assert.Check(t, is.Contains(strings.Join(it.Notes, " "), "a concurrent run stored runner"))
		}
	}
}

func TestApplyDryRunWritesNothing(t *testing.T) {
	e := setup(t)
	f := e.fleet(8)
	p, err := f.Plan(e.ctx, projectFleet(t, 30), fleet.All, true)
	assert.NilError(t, err)
	sum := f.Summarize(p, true)
	assert.Check(t, is.Equal(sum.Planned[fleet.Create], 30))
	assert.Check(t, sum.Results == nil)
	assert.Check(t, is.Equal(e.fake.Writes(), 0))
	assert.Check(t, is.Len(e.fake.Runners(), 0))
}

// TestApplyAmbiguousCreate: the connection drops after GitLab created a runner; Ensure's
// clean-up looks at GitLab's current list (not the plan's), deletes the runner whose token was
// lost, and creates it again, so the entry succeeds and nothing is left behind.
func TestApplyAmbiguousCreate(t *testing.T) {
	e := setup(t)
	e.fake.AddFault(gitlabfake.Fault{Method: "POST", Path: "/user/runners", DropAfterAct: true, Skip: 1, Times: 1})
	_, sum := e.apply(t, e.fleet(1), projectFleet(t, 3), false)
	assert.Check(t, is.Equal(sum.Failed, 0), "%+v", sum)
	assert.Check(t, is.Equal(sum.OrphansDeleted, 1), "the runner created without an answer was deleted")
	assert.Check(t, is.Len(e.fake.Runners(), 3))
	assert.Check(t, is.Equal(e.assertStored(t), 3))
}
