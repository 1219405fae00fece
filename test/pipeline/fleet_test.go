package pipeline

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// TestApplyFleetInParallelShards runs apply-fleet with parallel: 3: each job applies its own
// shard, and together they create every runner of the manifest exactly once.
func TestApplyFleetInParallelShards(t *testing.T) {
	start := time.Now()
	f := startFake(t)
	token := f.Env["MAINTAINER_TOKEN"]
	var manifest strings.Builder
	manifest.WriteString("runners:\n")
	const n = 7
	for i := range n {
		fmt.Fprintf(&manifest, "  - project_id: %d\n    description: fleet-%d\n    tag_list: [fleet]\n    variable: {key: FLEET_%d}\n", deployProjectID, i, i)
	}
	p := newProject(t, `include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/apply-fleet@$CI_COMMIT_SHA
    inputs:
      file: fleet.yaml
      parallel: 3
      stage: test
`)
	assert.NilError(t, os.WriteFile(p.dir.Join("fleet.yaml"), []byte(manifest.String()), 0o644))
	p.commit(t, "fleet manifest")

	res := p.run(t, f, token)
	res.Assert(t, icmd.Success)
	st := f.State(t)
	assert.Assert(t, is.Len(st.Runners, n), res.Combined())
	tokens := map[string]bool{}
	for _, r := range st.Runners {
		tokens[r.Token] = true
	}
	for i := range n {
		v := onlyVariable(t, st, fmt.Sprintf("FLEET_%d", i))
		assert.Check(t, tokens[v.Value], "FLEET_%d holds no runner's token", i)
	}
	for i := 1; i <= 3; i++ {
		assert.Check(t, is.Contains(res.Combined(), fmt.Sprintf("shard %d/3", i)))
	}
	assertNoSecrets(t, p, res.Combined(), token)

	// Applying again writes nothing.
	again := p.run(t, f, token)
	again.Assert(t, icmd.Success)
	assert.Check(t, is.Len(f.State(t).Runners, n))
	t.Logf("apply-fleet in 3 shards: %s", time.Since(start).Round(time.Millisecond))
}
