package fleet_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fleet"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

const initialFleet = `
runners:
  - project_id: platform/deploy
    description: a
    variable: {key: A}
  - project_id: 42
    description: b
    variable: {key: B}
  - project_id: 42
    description: c
    variable: {key: C}
  - project_id: 42
    description: d
    variable: {key: D}
  - runner_type: group_type
    group_id: platform/runners
    description: e
    variable: {key: E, project: platform/runners/fleet}
`

const changedFleet = `
runners:
  - project_id: platform/deploy
    description: a
    variable: {key: A}
  - project_id: 42
    description: b
    tag_list: [docker]
    locked: true
    variable: {key: B}
  - project_id: 42
    description: c
    variable: {key: C}
  - runner_type: group_type
    group_id: platform/runners
    description: e
    variable: {key: E, project: platform/runners/fleet, protected: false}
  - project_id: 42
    description: f
    maintenance_note: new this week
    variable: {key: F}
`

func TestPlanFirstApply(t *testing.T) {
	e := setup(t)
	_, text := e.planText(t, parse(t, initialFleet), false)
	golden.Assert(t, text, "plan-first.golden")
	assert.Check(t, is.Equal(e.fake.Writes(), 0), "a plan only reads")
}

// TestPlanMixed covers every action of a plan: unchanged, update (runner attributes and a
// variable setting), replace (the runner was deleted in the UI), create, an orphan left by an
// interrupted run, and --prune's delete of a runner no entry wants, next to runners --prune
// must leave alone.
func TestPlanMixed(t *testing.T) {
	e := setup(t)
	f := e.fleet(1) // one at a time: runner ids in manifest order
	_, sum := e.apply(t, f, parse(t, initialFleet), false)
	assert.Check(t, is.Equal(sum.Results["created"], 5))
	assert.Check(t, is.DeepEqual(runnerIDs(e.fake), []int64{1000, 1001, 1002, 1003, 1004}))

	e.fake.DeleteRunnerDirect(1002)
	orphan := e.markedRunner(t, gitlab.RunnerAttrs{Type: spec.ProjectType, ProjectID: 42, Description: "a"}, "project:42/A@*")
	manual := e.markedRunner(t, gitlab.RunnerAttrs{Type: spec.ProjectType, ProjectID: 42, Description: "d"}, "")
	elsewhere := e.markedRunner(t, gitlab.RunnerAttrs{Type: spec.ProjectType, ProjectID: 43, Description: "z"}, "project:43/Z@*")
	ancestor := e.markedRunner(t, gitlab.RunnerAttrs{Type: spec.GroupType, GroupID: 10, Description: "y"}, "group:10/Y@*")
	assert.Check(t, is.DeepEqual([]int64{orphan, manual, elsewhere, ancestor}, []int64{1005, 1006, 1007, 1008}))

	m := parse(t, changedFleet)
	e.fake.ResetRequests()
	_, text := e.planText(t, m, true)
	golden.Assert(t, text, "plan-mixed.golden")
	assert.Check(t, is.Equal(writes(e.fake.Requests()), 0), "a plan only reads")

	p, sum := e.apply(t, e.fleet(1), m, true)
	var b bytes.Buffer
	p.WriteResults(&b, sum)
	golden.Assert(t, b.String(), "apply-mixed.golden")
	assert.Check(t, is.Equal(sum.Failed, 0))
	assert.Check(t, is.Equal(sum.OrphansDeleted, 1))

	// Kept: A, B (updated in place), E, the new C and F; the runners prune must not touch.
	// Gone: D (pruned, with its variable) and the orphan.
	assert.Check(t, is.DeepEqual(runnerIDs(e.fake), []int64{1000, 1001, 1004, 1006, 1007, 1008, 1009, 1010}))
	_, ok := e.fake.Variable("project", 42, "D", "*")
	assert.Check(t, !ok, "the pruned runner's variable is deleted too")
	assert.Check(t, is.Equal(e.assertStored(t), 5))
	b1001, _ := e.fake.Runner(1001)
	assert.Check(t, b1001.Locked)
	assert.Check(t, is.DeepEqual(b1001.TagList, []string{"docker"}))
	ev, _ := e.fake.Variable("project", 43, "E", "*")
	assert.Check(t, !ev.Protected)

	// And again: nothing to do, nothing written.
	e.fake.ResetRequests()
	_, sum = e.apply(t, e.fleet(8), m, true)
	assert.Check(t, is.Equal(sum.Results["unchanged"], 5))
	assert.Check(t, is.Equal(e.fake.Writes(), 0))
}

// TestPlanFailures: entries that cannot be planned are reported and left alone, the others
// go ahead, and --prune deletes nothing when it cannot know what every entry keeps.
func TestPlanFailures(t *testing.T) {
	e := setup(t)
	_, sum := e.apply(t, e.fleet(1), parse(t, `
runners:
  - project_id: 42
    description: old
    variable: {key: OLD}
`), false)
	assert.Check(t, is.Equal(sum.Failed, 0))
	v := gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: 42, Key: "MINE", Scope: "*"}
	assert.NilError(t, e.client.CreateVariable(e.ctx, v, gitlab.VariableWrite{Value: new(token.Secret("someone-elses-value"))}))

	m := parse(t, `
runners:
  - project_id: platform/missing
    variable: {key: X}
  - project_id: 42
    variable: {key: MINE}
  - project_id: 42
    description: new
    variable: {key: NEW, hidden: false}
  - project_id: 42
    variable: {key: OLD, project: 42}
`)
	_, text := e.planText(t, m, true)
	golden.Assert(t, text, "plan-failures.golden")

	e.fake.ResetRequests()
	p, sum := e.apply(t, e.fleet(8), m, true)
	assert.Check(t, is.Equal(sum.Failed, 2))
	assert.Check(t, is.Equal(sum.Results["created"], 1))
	assert.Check(t, is.Equal(sum.Results["updated"], 1), "OLD gets the new description (empty)")
	assert.Check(t, is.Equal(len(runnerIDs(e.fake)), 2), "nothing pruned")
	for _, it := range p.Items {
		if it.Action == fleet.Fail {
			assert.Check(t, is.Equal(it.Result, fleet.ResultFailed))
			assert.Check(t, it.Error != "")
		}
	}
}

// TestDuplicateAfterResolution: two spellings of one project are one variable; the plan
// refuses the manifest with exit code 2 before anything is written.
func TestDuplicateAfterResolution(t *testing.T) {
	e := setup(t)
	m := parse(t, `
runners:
  - project_id: 42
    description: by id
  - project_id: platform/deploy
    description: by path
`)
	_, err := e.fleet(8).Plan(e.ctx, m, fleet.All, false)
	assert.Check(t, is.ErrorContains(err, "fleet.yaml:4: runners[1] stores its token in project platform/deploy variable RUNNER_TOKEN (scope *), which is the variable of runners[0] (line 2) too once ids and paths are resolved"))
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage))
	assert.Check(t, is.Equal(e.fake.Writes(), 0))

	// With shards, each shard sees the clash although the two entries fall in different shards
	// (two owners as written, one entry each): the manifest names project variables both by id
	// and by path, so the shard of the id looks the other shard's path up — one request, and no
	// list of it — while the shard of the path needs nothing of the other (an id is its own
	// answer).
	m = parse(t, `
runners:
  - project_id: 42
    variable: {key: K}
  - project_id: platform/deploy
    variable: {key: K}
`)
	split := m.Split(2)
	assert.Assert(t, is.Len(split[0], 1))
	assert.Assert(t, split[0][0].Index != split[1][0].Index)
	for i := 1; i <= 2; i++ {
		e.fake.ResetRequests()
		_, err := e.fleet(8).Plan(e.ctx, m, fleet.Shard{Index: i, Total: 2}, false)
		assert.Check(t, is.ErrorContains(err, "once ids and paths are resolved"), "shard %d/2", i)
		var lookups []string
		for _, r := range e.fake.Requests() {
			if r.Path == "/api/v4/projects/platform/deploy" {
				lookups = append(lookups, r.Path)
			}
		}
		assert.Check(t, is.Len(lookups, 1), "shard %d/2 looks platform/deploy up once", i)
	}
	assert.Check(t, is.Equal(e.fake.Writes(), 0))
}

func TestPlanJSONHasNoToken(t *testing.T) {
	e := setup(t)
	p, _ := e.apply(t, e.fleet(8), parse(t, initialFleet), false)
	b, err := json.Marshal(p.Items)
	assert.NilError(t, err)
	for _, r := range e.fake.Runners() {
		assert.Check(t, !bytes.Contains(b, []byte(r.Token)))
	}
	assert.Check(t, !bytes.Contains(b, []byte("glrt-")))
}

func TestPlanSharded(t *testing.T) {
	e := setup(t)
	m := manifest(t, 30)
	created := 0
	for i := 1; i <= 3; i++ {
		p, err := e.fleet(8).Plan(e.ctx, m, fleet.Shard{Index: i, Total: 3}, false)
		assert.NilError(t, err)
		e.fleet(8).Apply(e.ctx, p)
		for _, it := range p.Items {
			assert.Check(t, is.Equal(it.Result, "created"))
			created++
		}
	}
	assert.Check(t, is.Equal(created, 30))
	assert.Check(t, is.Equal(e.assertStored(t), 30))
	e.fake.ResetRequests()
	_, sum := e.apply(t, e.fleet(8), m, false)
	assert.Check(t, is.Equal(sum.Results["unchanged"], 30))
	assert.Check(t, is.Equal(e.fake.Writes(), 0))
}

// TestShardsReadOnlyTheirOwners counts, at the fake, what each of two shards asks GitLab for
// in a first apply of four projects × 10 runners: its own entries' two writes each, and for
// each of its own owners the look-up, the runner list and the variable list (in the plan and in
// the read-back) — four reads per owner, and no request about an owner of the other shard. The
// two shards together make the requests one process would (2 × 40 + 4 × 4).
func TestShardsReadOnlyTheirOwners(t *testing.T) {
	e := setup(t)
	var ids []int64
	byPath := map[string]int64{}
	for i := range 4 {
		path := fmt.Sprintf("platform/shard-%d", i)
		ids = append(ids, e.fake.AddProject(path))
		byPath[path] = ids[i]
	}
	var b strings.Builder
	b.WriteString("runners:\n")
	for i := range 40 {
		fmt.Fprintf(&b, "  - project_id: %d\n    description: r%02d\n    variable: {key: K%02d}\n", ids[i%4], i, i)
	}
	m := parse(t, b.String())

	total, metadata, seen := 0, 0, map[int64]int{}
	for i := 1; i <= 2; i++ {
		e.fake.ResetRequests()
		f := e.fleet(8)
		p, err := f.Plan(e.ctx, m, fleet.Shard{Index: i, Total: 2}, false)
		assert.NilError(t, err)
		f.Apply(e.ctx, p)
		reqs := e.fake.Requests()
		total += len(reqs)

		mine := map[int64]bool{}
		for _, it := range p.Items {
			assert.Check(t, is.Equal(it.Result, "created"), it.Entry)
			id, ok := byPath[strings.TrimPrefix(it.Owner, "project ")]
			assert.Check(t, ok, "owner %q", it.Owner)
			mine[id] = true
		}
		assert.Check(t, is.Len(mine, 2), "shard %d/2 has two of the four owners", i)
		want := map[string]int{}
		for id := range mine {
			seen[id]++
			want[fmt.Sprintf("GET /api/v4/projects/%d?", id)] = 1
			want[fmt.Sprintf("GET /api/v4/projects/%d/runners?page=1&per_page=100&type=project_type", id)] = 1
			want[fmt.Sprintf("GET /api/v4/projects/%d/variables?page=1&per_page=100", id)] = 2
		}
		got := map[string]int{}
		for _, r := range reqs {
			if r.Method == "GET" {
				got[r.Method+" "+r.Path+"?"+r.Query]++
			}
		}
		// The version is read once per client, so by the first shard only.
		md := got["GET /api/v4/metadata?"]
		metadata += md
		delete(got, "GET /api/v4/metadata?")
		assert.Check(t, is.DeepEqual(got, want), "shard %d/2", i)
		assert.Check(t, is.Equal(writes(reqs), 2*len(p.Items)), "shard %d/2", i)
		assert.Check(t, is.Equal(len(reqs), 2*len(p.Items)+4*len(mine)+md), "shard %d/2", i)
	}
	assert.Check(t, is.Len(seen, 4), "every owner is read by one shard")
	assert.Check(t, is.Equal(total, 2*40+4*4+1))
	assert.Check(t, is.Equal(metadata, 1))
	assert.Check(t, is.Equal(e.assertStored(t), 40))
}
