package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// TestAuditScale reads a group of 200 runners over a fake with 25 ms per request and checks
// the cost stays per runner, not per runner and manager: one GET /runners/:id each, GraphQL
// in batches, and everything else per project or group. It logs the request count and wall
// time for the closing note (timings are logged, never asserted).
func TestAuditScale(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	const runners, projects = 200, 10
	for i := range projects {
		tg.fake.AddProject(fmt.Sprintf("platform/p%02d", i))
	}
	for i := range runners {
		// AddProject numbers projects after the seed's; platform/p00 is the first.
		code := userCall(t, tg, http.MethodPost, "/user/runners", tg.seed.AdminToken,
			map[string]any{"runner_type": "project_type", "project_id": 200 + i%projects, "description": fmt.Sprintf("r%03d", i)})
		assert.Equal(t, code, http.StatusCreated)
	}
	tg.fake.SetLatency(25 * time.Millisecond)
	tg.fake.ResetRequests()
	start := time.Now()
	res := tg.run(t, tg.seed.AdminToken, nil, "audit", "-o", "json", "--group", "platform", "--include-subgroups", "--fail-on", "critical")
	wall := time.Since(start)
	res.Assert(t, icmd.Success)
	rep := decodeAudit(t, res)
	assert.Check(t, is.Len(rep.Runners, runners))

	perKind := map[string]int{}
	for _, r := range tg.fake.Requests() {
		switch {
		case r.Path == "/api/graphql":
			perKind["graphql"]++
		case strings.HasPrefix(r.Path, "/api/v4/runners/"):
			perKind["runner"]++
		default:
			perKind["other"]++
		}
	}
	total := len(tg.fake.Requests())
	assert.Check(t, is.Equal(perKind["runner"], runners), "one GET /runners/:id per runner, no REST managers when GraphQL answers")
	assert.Check(t, is.Equal(perKind["graphql"], runners/20), "GraphQL asks for 20 runners per query")
	// 12 projects and 2 groups: each has its registration-token read, variables and runners.
	assert.Check(t, perKind["other"] < 3*(projects+4)+10, "requests besides the runners: %d", perKind["other"])
	t.Logf("audit of %d runners: %d requests (%v), %s at 25 ms per request, 8 in flight", runners, total, perKind, wall.Round(time.Millisecond))
	t.Logf("stderr progress lines: %d", strings.Count(res.Stderr(), "runner "))
}
