package pipeline

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

const deployProjectID = 42 // the seed's platform/deploy

// lifecycleCI creates, rotates and deletes one runner in three stages; a job in the
// middle stage reads the create job's dotenv report.
const lifecycleCI = `stages: [create, rotate, delete]

include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/create-runner@$CI_COMMIT_SHA
    inputs:
      stage: create
      description: lifecycle runner
      tag_list: docker,linux
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/rotate-token@$CI_COMMIT_SHA
    inputs:
      stage: rotate
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/delete-runner@$CI_COMMIT_SHA
    inputs:
      stage: delete

check-dotenv:
  stage: rotate
  script:
    - echo "create-runner reported runner $RUNNER_BOOTSTRAP_RUNNER_ID ($RUNNER_BOOTSTRAP_ACTION)"
    - test "$RUNNER_BOOTSTRAP_ACTION" = created
    - test "$RUNNER_BOOTSTRAP_RUNNER_ID" -gt 0
`

// TestLifecycleStageByStage runs the lifecycle pipeline one stage per gitlab-ci-local
// invocation, so the fake's state can be checked between stages.
func TestLifecycleStageByStage(t *testing.T) {
	start := time.Now()
	f := startFake(t)
	p := newProject(t, lifecycleCI)
	token := f.Env["MAINTAINER_TOKEN"]
	secrets := []string{token}

	var outputs []string // of every invocation, for the token scan
	res := p.run(t, f, token, "--variable", fmt.Sprintf("CI_PROJECT_ID=%d", deployProjectID), "--stage", "create")
	res.Assert(t, icmd.Success)
	outputs = append(outputs, res.Combined())
	st := f.State(t)
	assert.Assert(t, is.Len(st.Runners, 1), res.Combined())
	created := st.Runners[0]
	assert.Check(t, is.Equal(created.Type, "project_type"))
	assert.Check(t, is.DeepEqual(created.ProjectIDs, []int64{deployProjectID}))
	assert.Check(t, is.Equal(created.Description, "lifecycle runner"))
	assert.Check(t, is.DeepEqual(created.TagList, []string{"docker", "linux"}))
	v := onlyVariable(t, st, "RUNNER_TOKEN")
	assert.Check(t, is.Equal(v.Owner, "project"))
	assert.Check(t, is.Equal(v.OwnerID, int64(deployProjectID)))
	assert.Check(t, strings.HasPrefix(created.Token, "glrt-"), "runner token %q", created.Token)
	assert.Check(t, is.Equal(v.Value, created.Token), "the variable holds the runner's token")
	secrets = append(secrets, created.Token)

	// (f) the dotenv report: non-secret facts only.
	env := p.dotenv(t, "create-runner")
	assert.Check(t, is.Equal(env["RUNNER_BOOTSTRAP_RUNNER_ID"], fmt.Sprint(created.ID)))
	assert.Check(t, is.Equal(env["RUNNER_BOOTSTRAP_ACTION"], "created"))
	assert.Check(t, is.Equal(env["RUNNER_BOOTSTRAP_VARIABLE_KEY"], "RUNNER_TOKEN"))

	// In a push pipeline rotate-token is a manual job: start it, as someone would.
	res = p.run(t, f, token, "--variable", fmt.Sprintf("CI_PROJECT_ID=%d", deployProjectID), "--stage", "rotate", "--manual", "rotate-token")
	res.Assert(t, icmd.Success)
	outputs = append(outputs, res.Combined())
	assert.Check(t, is.Contains(res.Combined(), fmt.Sprintf("create-runner reported runner %d (created)", created.ID)))
	st = f.State(t)
	assert.Assert(t, is.Len(st.Runners, 1), res.Combined())
	rotated := st.Runners[0]
	assert.Check(t, is.Equal(rotated.ID, created.ID), "rotation keeps the runner")
	assert.Check(t, rotated.Token != created.Token, "rotation changes the token")
	assert.Check(t, is.Equal(onlyVariable(t, st, "RUNNER_TOKEN").Value, rotated.Token), "the variable holds the rotated token")
	secrets = append(secrets, rotated.Token)
	assert.Check(t, is.Equal(p.dotenv(t, "rotate-token")["RUNNER_BOOTSTRAP_ACTION"], "rotated"))

	res = p.run(t, f, token, "--variable", fmt.Sprintf("CI_PROJECT_ID=%d", deployProjectID), "--stage", "delete")
	res.Assert(t, icmd.Success)
	outputs = append(outputs, res.Combined())
	st = f.State(t)
	assert.Check(t, is.Len(st.Runners, 0))
	assert.Check(t, is.Len(st.Variables, 0))

	// (e) no token in any output of any stage.
	assertNoSecrets(t, p, strings.Join(outputs, "\n"), secrets...)
	t.Logf("lifecycle stage by stage: %s", time.Since(start).Round(time.Millisecond))
}

// TestLifecycleInOnePipeline runs create, rotate and delete as one pipeline and checks
// the order of the API writes the fake saw.
func TestLifecycleInOnePipeline(t *testing.T) {
	start := time.Now()
	f := startFake(t)
	p := newProject(t, lifecycleCI)
	token := f.Env["MAINTAINER_TOKEN"]

	// A scheduled pipeline: rotate-token runs by itself there.
	res := p.run(t, f, token, "--variable", fmt.Sprintf("CI_PROJECT_ID=%d", deployProjectID), "--variable", "CI_PIPELINE_SOURCE=schedule")
	res.Assert(t, icmd.Success)
	for _, job := range []string{"create-runner", "rotate-token", "check-dotenv", "delete-runner"} {
		assert.Check(t, regexp.MustCompile(`PASS\s+`+regexp.QuoteMeta(job)).MatchString(res.Combined()), "job %s did not pass:\n%s", job, res.Combined())
	}
	st := f.State(t)
	assert.Check(t, is.Len(st.Runners, 0))
	assert.Check(t, is.Len(st.Variables, 0))

	var writes []string
	for _, r := range f.Requests(t) {
		if r.Method != "GET" && r.Status/100 == 2 {
			writes = append(writes, r.Method+" "+r.Path)
		}
	}
	id := runnerIDFromWrites(t, writes)
	variable := fmt.Sprintf("/api/v4/projects/%d/variables", deployProjectID)
	assertInOrder(t, writes,
		"POST /api/v4/user/runners",
		"POST "+variable,
		fmt.Sprintf("POST /api/v4/runners/%d/reset_authentication_token", id),
		"PUT "+variable+"/RUNNER_TOKEN",
		fmt.Sprintf("DELETE /api/v4/runners/%d", id),
		"DELETE "+variable+"/RUNNER_TOKEN",
	)
	assertNoSecrets(t, p, res.Combined(), token)
	t.Logf("lifecycle in one pipeline: %s", time.Since(start).Round(time.Millisecond))
}

// TestComponentsWithDefaultInputs includes each component with no inputs at all:
// project_id comes from CI_PROJECT_ID, the variable is RUNNER_TOKEN.
func TestComponentsWithDefaultInputs(t *testing.T) {
	start := time.Now()
	f := startFake(t)
	token := f.Env["MAINTAINER_TOKEN"]
	only := func(name string) string {
		return "include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/" + name + "@$CI_COMMIT_SHA\n"
	}
	projectID := "--variable"
	projectIDValue := fmt.Sprintf("CI_PROJECT_ID=%d", deployProjectID)

	p := newProject(t, only("create-runner"))
	p.run(t, f, token, projectID, projectIDValue).Assert(t, icmd.Success)
	st := f.State(t)
	assert.Assert(t, is.Len(st.Runners, 1))
	r := st.Runners[0]
	assert.Check(t, is.Equal(r.Type, "project_type"))
	assert.Check(t, is.DeepEqual(r.ProjectIDs, []int64{deployProjectID}))
	assert.Check(t, r.RunUntagged, "run_untagged defaults to true")
	assert.Check(t, !r.Locked)
	assert.Check(t, !r.Paused)
	assert.Check(t, is.Equal(r.AccessLevel, "not_protected"))
	assert.Check(t, is.Equal(r.MaximumTimeout, int64(0)))
	v := onlyVariable(t, st, "RUNNER_TOKEN")
	assert.Check(t, is.Equal(v.Owner, "project"))
	assert.Check(t, is.Equal(v.OwnerID, int64(deployProjectID)))
	assert.Check(t, is.Equal(v.EnvironmentScope, "*"))
	assert.Check(t, is.Equal(v.VariableType, "env_var"))
	assert.Check(t, v.Protected && v.Masked && v.Hidden, "protected, masked and hidden by default: %+v", v)
	assert.Check(t, is.Equal(v.Value, r.Token))
	assert.Check(t, is.Equal(p.dotenv(t, "create-runner")["RUNNER_BOOTSTRAP_RUNNER_ID"], fmt.Sprint(r.ID)))

	p.setCI(t, only("rotate-token"))
	// With default rules rotate-token runs by itself in a scheduled pipeline (see TestRotateTokenRulesBySource).
	p.run(t, f, token, projectID, projectIDValue, "--variable", "CI_PIPELINE_SOURCE=schedule").Assert(t, icmd.Success)
	st = f.State(t)
	assert.Assert(t, is.Len(st.Runners, 1))
	assert.Check(t, st.Runners[0].Token != r.Token, "rotate-token changed the token")
	assert.Check(t, is.Equal(onlyVariable(t, st, "RUNNER_TOKEN").Value, st.Runners[0].Token))

	p.setCI(t, only("delete-runner"))
	res := p.run(t, f, token, projectID, projectIDValue)
	res.Assert(t, icmd.Success)
	st = f.State(t)
	assert.Check(t, is.Len(st.Runners, 0))
	assert.Check(t, is.Len(st.Variables, 0))
	assertNoSecrets(t, p, res.Combined(), token, r.Token)
	t.Logf("components with default inputs: %s", time.Since(start).Round(time.Millisecond))
}

// TestCreateWithEveryInput overrides every input of create-runner that can be combined
// (variable_project, variable_group and variable_instance exclude each other, so the
// token goes to a group) and checks each one reached GitLab. group_id is set too: a
// project runner must ignore it.
func TestCreateWithEveryInput(t *testing.T) {
	start := time.Now()
	f := startFake(t)
	p := newProject(t, `stages: [infra]

include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/create-runner@$CI_COMMIT_SHA
    inputs:
      as: runners:deploy
      stage: infra
      image: registry.example.com/tools/runner-bootstrap:v1.2.3
      rules:
        - if: $CI_PIPELINE_SOURCE == "push"
      runner_type: project_type
      project_id: platform/deploy
      group_id: "10"
      description: 'deploy: linux "amd64" $$HOME'
      tag_list: docker,linux
      run_untagged: false
      locked: true
      access_level: ref_protected
      maximum_timeout: 3600
      paused: true
      maintenance_note: 'owned by #platform; page on-call'
      variable_key: DEPLOY_RUNNER_TOKEN
      variable_group: platform
      variable_environment_scope: production
      variable_protected: false
      variable_hidden: false
      variable_type: file
      log_level: debug
`)
	// The group variable needs the group's Owner.
	token := f.Env["OWNER_TOKEN"]
	res := p.run(t, f, token)
	res.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(res.Combined(), "runners:deploy"))
	assert.Check(t, is.Contains(res.Combined(), "level=debug"), "log_level reached the tool")

	st := f.State(t)
	assert.Assert(t, is.Len(st.Runners, 1), res.Combined())
	r := st.Runners[0]
	assert.Check(t, is.Equal(r.Type, "project_type"))
	assert.Check(t, is.DeepEqual(r.ProjectIDs, []int64{deployProjectID}))
	assert.Check(t, is.Equal(r.Description, `deploy: linux "amd64" $HOME`))
	assert.Check(t, is.DeepEqual(r.TagList, []string{"docker", "linux"}))
	assert.Check(t, !r.RunUntagged)
	assert.Check(t, r.Locked)
	assert.Check(t, r.Paused)
	assert.Check(t, is.Equal(r.AccessLevel, "ref_protected"))
	assert.Check(t, is.Equal(r.MaximumTimeout, int64(3600)))
	assert.Check(t, is.Contains(r.MaintenanceNote, "owned by #platform; page on-call"))

	v := onlyVariable(t, st, "DEPLOY_RUNNER_TOKEN")
	assert.Check(t, is.Equal(v.Owner, "group"))
	assert.Check(t, is.Equal(v.OwnerID, int64(gitlabfake.SeedPlatformGroupID)))
	assert.Check(t, is.Equal(v.EnvironmentScope, "production"))
	assert.Check(t, is.Equal(v.VariableType, "file"))
	assert.Check(t, !v.Protected)
	assert.Check(t, !v.Hidden)
	assert.Check(t, v.Masked, "a token variable is always masked")
	assert.Check(t, is.Equal(v.Value, r.Token))

	env := p.dotenv(t, "runners:deploy")
	assert.Check(t, is.Equal(env["RUNNER_BOOTSTRAP_VARIABLE_OWNER"], "group"))
	assertNoSecrets(t, p, res.Combined(), token, r.Token)
	t.Logf("create with every input: %s", time.Since(start).Round(time.Millisecond))
}

// TestBadInputIsRejected checks that a value outside options or regex stops the
// pipeline before any job runs, so nothing reaches GitLab.
func TestBadInputIsRejected(t *testing.T) {
	start := time.Now()
	f := startFake(t)
	cases := []struct {
		name, component, input, value, want string
	}{
		{"runner_type option", "create-runner", "runner_type", "foo", "`runner_type` input: `foo` cannot be used because it is not in the list of allowed options"},
		{"access_level option", "create-runner", "access_level", "public", "`access_level` input: `public` cannot be used because it is not in the list of allowed options"},
		{"project_id regex", "delete-runner", "project_id", "'platform deploy'", "`project_id` input: `platform deploy` does not match required regex"},
		{"duration regex", "rotate-token", "if_expiring_within", "3d", "`if_expiring_within` input: `3d` does not match required regex"},
		{"boolean type", "create-runner", "locked", "'yes'", "`locked` input: provided value is not a boolean"},
	}
	p := newProject(t, "# replaced by each case\n")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.setCI(t, fmt.Sprintf("include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/%s@$CI_COMMIT_SHA\n    inputs:\n      %s: %s\n",
				tc.component, tc.input, tc.value))
			res := p.run(t, f, f.Env["MAINTAINER_TOKEN"], "--variable", fmt.Sprintf("CI_PROJECT_ID=%d", deployProjectID))
			assert.Check(t, res.ExitCode != 0, "the pipeline should not start:\n%s", res.Combined())
			assert.Check(t, is.Contains(res.Combined(), "This GitLab CI configuration is invalid"))
			assert.Check(t, is.Contains(res.Combined(), tc.want))
			st := f.State(t)
			assert.Check(t, is.Len(st.Runners, 0))
			assert.Check(t, is.Len(st.Variables, 0))
			assert.Check(t, is.Len(f.Requests(t), 0), "no API call at all")
		})
	}
	t.Logf("bad inputs: %s", time.Since(start).Round(time.Millisecond))
}

func onlyVariable(t *testing.T, st gitlabfake.State, key string) gitlabfake.Variable {
	t.Helper()
	var found []gitlabfake.Variable
	for _, v := range st.Variables {
		if v.Key == key {
			found = append(found, v)
		}
	}
	assert.Assert(t, is.Len(found, 1), "variables with key %s in %+v", key, st.Variables)
	return found[0]
}

var resetPathRE = regexp.MustCompile(`^POST /api/v4/runners/(\d+)/reset_authentication_token$`)

func runnerIDFromWrites(t *testing.T, writes []string) int {
	t.Helper()
	for _, w := range writes {
		if m := resetPathRE.FindStringSubmatch(w); m != nil {
			var id int
			_, err := fmt.Sscan(m[1], &id)
			assert.NilError(t, err)
			return id
		}
	}
	t.Fatalf("no token reset among the writes:\n%s", strings.Join(writes, "\n"))
	return 0
}

// assertInOrder checks that want occurs in got as a subsequence.
func assertInOrder(t *testing.T, got []string, want ...string) {
	t.Helper()
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	assert.Check(t, i == len(want), "expected, in this order:\n  %s\nstopped at %q; the writes were:\n  %s",
		strings.Join(want, "\n  "), want[min(i, len(want)-1)], strings.Join(got, "\n  "))
}

// tokenShapeRE matches anything shaped like a runner, personal/project/group access,
// runner registration or CI job token.
var tokenShapeRE = regexp.MustCompile(`glrt-[A-Za-z0-9_-]{8,}|glpat-[A-Za-z0-9_-]{8,}|GR1348941[A-Za-z0-9_-]{8,}|glcbt-[A-Za-z0-9_-]{8,}`)

var tokenPrefixes = []string{"glrt-", "glpat-", "GR1348941", "glcbt-"}

func tokenPrefix(token string) string {
	for _, p := range tokenPrefixes {
		if strings.HasPrefix(token, p) {
			return p
		}
	}
	return "?"
}

// assertNoSecrets checks gitlab-ci-local's own output and every file it wrote (job logs,
// artifacts, dotenv reports) for the given secrets and for anything shaped like a token:
// gitlab-ci-local does not mask variables, so what the tool prints is what GitLab would store.
func assertNoSecrets(t *testing.T, p *project, output string, secrets ...string) {
	t.Helper()
	texts := p.stateFiles(t)
	texts["gitlab-ci-local output"] = output
	names := make([]string, 0, len(texts))
	for name := range texts {
		names = append(names, name)
	}
	slices.Sort(names)
	assert.Check(t, slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "output/") }), "no job logs under .gitlab-ci-local/output: %v", names)
	for _, name := range names {
		text := texts[name]
		// Messages name the token's kind only, never its characters.
		if m := tokenShapeRE.FindString(text); m != "" {
			t.Errorf("%s contains a token-shaped string (%s…)", name, tokenPrefix(m))
		}
		for i, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s contains secret #%d of the test", name, i)
			}
		}
	}
}
