package pipeline

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// TestRotateTokenRulesBySource includes rotate-token with default inputs and runs the pipeline
// as each source would start it: a push or merge request pipeline must leave the token alone
// (the job waits as a manual job), scheduled, API, trigger and web pipelines rotate it.
func TestRotateTokenRulesBySource(t *testing.T) {
	start := time.Now()
	f := startFake(t)
	token := f.Env["MAINTAINER_TOKEN"]
	projectID := fmt.Sprintf("CI_PROJECT_ID=%d", deployProjectID)
	p := newProject(t, "include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/create-runner@$CI_COMMIT_SHA\n")
	p.run(t, f, token, "--variable", projectID).Assert(t, icmd.Success)
	before := f.State(t)
	assert.Assert(t, is.Len(before.Runners, 1))
	p.setCI(t, "include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/rotate-token@$CI_COMMIT_SHA\n")

	passed := regexp.MustCompile(`PASS\s+rotate-token`)
	for _, source := range []string{"push", "merge_request_event"} {
		t.Run(source, func(t *testing.T) {
			requests := len(f.Requests(t))
			res := p.run(t, f, token, "--variable", projectID, "--variable", "CI_PIPELINE_SOURCE="+source)
			res.Assert(t, icmd.Success)
			assert.Check(t, !passed.MatchString(res.Combined()), "rotate-token ran in a %s pipeline:\n%s", source, res.Combined())
			st := f.State(t)
			assert.Assert(t, is.Len(st.Runners, 1))
			assert.Check(t, is.Equal(st.Runners[0].Token, before.Runners[0].Token), "a %s pipeline rotated the token", source)
			assert.Check(t, is.Len(f.Requests(t), requests), "a %s pipeline sent API requests", source)

			list := p.run(t, f, token, "--variable", projectID, "--variable", "CI_PIPELINE_SOURCE="+source, "--list")
			list.Assert(t, icmd.Success)
			assert.Check(t, regexp.MustCompile(`(?m)^rotate-token\s.*\bmanual\b`).MatchString(list.Stdout()),
				"rotate-token should be a manual job in a %s pipeline:\n%s", source, list.Stdout())
		})
	}
	last := before.Runners[0].Token
	for _, source := range []string{"schedule", "api", "trigger", "web"} {
		t.Run(source, func(t *testing.T) {
			res := p.run(t, f, token, "--variable", projectID, "--variable", "CI_PIPELINE_SOURCE="+source)
			res.Assert(t, icmd.Success)
			assert.Check(t, passed.MatchString(res.Combined()), "rotate-token did not run in a %s pipeline:\n%s", source, res.Combined())
			st := f.State(t)
			assert.Assert(t, is.Len(st.Runners, 1))
			assert.Check(t, st.Runners[0].Token != last, "a %s pipeline did not rotate the token", source)
			assert.Check(t, is.Equal(onlyVariable(t, st, "RUNNER_TOKEN").Value, st.Runners[0].Token))
			last = st.Runners[0].Token
			assert.Check(t, !strings.Contains(res.Combined(), last))
		})
	}
	t.Logf("rotate-token rules by source: %s", time.Since(start).Round(time.Millisecond))
}
