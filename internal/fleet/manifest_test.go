package fleet_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fleet"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

func TestParseDefaultsAndMirrorsCreateFlags(t *testing.T) {
	m, err := fleet.Parse("fleet.yaml", []byte(`
.defaults: &linux
  tag_list: [docker, linux]
  run_untagged: false
runners:
  - runner_type: project_type
    project_id: 42
    description: deploy
    <<: *linux
    variable:
      key: DEPLOY_RUNNER_TOKEN
      project: 42
      protected: true
      hidden: true
  - project_id: platform/deploy
    tag_list: "a, b"
    locked: true
    access_level: ref_protected
    maximum_timeout: 3600
    paused: true
    maintenance_note: build hosts
  - runner_type: group_type
    group_id: platform/runners
    description: 2024
    variable: {key: G, project: platform/runners/fleet, environment_scope: production, protected: false, hidden: false, variable_type: file}
  - runner_type: instance_type
    variable: {key: SHARED}
`))
	assert.NilError(t, err)
	assert.Assert(t, is.Len(m.Entries, 4))

	first := m.Entries[0]
	assert.Check(t, is.Equal(first.Line, 6))
	assert.Check(t, is.Equal(first.VariableLine, 10))
	assert.Check(t, is.DeepEqual(first.Spec.Runner.TagList, []string{"docker", "linux"}))
	assert.Check(t, !first.Spec.Runner.RunUntagged, "merged from the anchor")
	assert.Check(t, is.Equal(first.Spec.Variable.Owner, spec.OwnerProject))
	assert.Check(t, is.Equal(first.Spec.Variable.OwnerRef, "42"))

	// Defaults are create's: project runner, RUNNER_TOKEN in the runner's project, scope *,
	// protected, hidden, env_var, untagged jobs allowed.
	second := m.Entries[1].Spec
	assert.Check(t, is.Equal(second.Runner.Type, spec.ProjectType))
	assert.Check(t, is.DeepEqual(second.Runner.TagList, []string{"a", "b"}))
	assert.Check(t, second.Runner.RunUntagged && second.Runner.Locked && second.Runner.Paused)
	assert.Check(t, is.Equal(second.Runner.AccessLevel, spec.RefProtected))
	assert.Check(t, is.Equal(second.Runner.MaximumTimeout, int64(3600)))
	assert.Check(t, is.Equal(second.Variable, spec.Variable{Key: spec.DefaultKey, Owner: spec.OwnerProject, OwnerRef: "platform/deploy",
		EnvironmentScope: "*", Protected: true, Hidden: true, Type: spec.EnvVar}))

	third := m.Entries[2].Spec
	assert.Check(t, is.Equal(third.Runner.Description, "2024"))
	assert.Check(t, is.Equal(third.Variable, spec.Variable{Key: "G", Owner: spec.OwnerProject, OwnerRef: "platform/runners/fleet",
		EnvironmentScope: "production", Type: spec.File}))

	fourth := m.Entries[3].Spec
	assert.Check(t, is.Equal(fourth.Variable.Owner, spec.OwnerInstance))
}

// TestParseErrors: each mistake is reported at its line, in the manifest's own terms, with
// exit code 2; every mistake of a file is reported at once.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"maximum timeout too short", `
runners:
  - project_id: 42
  - project_id: 43
  - project_id: 44
  - project_id: 45
    maximum_timeout: 300
`, []string{"fleet.yaml:7: runners[3].maximum_timeout is 300: GitLab needs at least 600 seconds"}},
		{"unknown key lists the known ones", `
runners:
  - project_id: 42
    tags: [a]
`, []string{"fleet.yaml:4: runners[0].tags is not a known key (did you mean tag_list?): expected one of runner_type, project_id, group_id, description, tag_list, run_untagged, locked, access_level, maximum_timeout, paused, maintenance_note, token_expires_in, token_rotation_deadline_in, variable"}},
		{"flag spelling", `
runners:
  - project-id: 42
`, []string{"fleet.yaml:3: runners[0].project-id is not a known key (did you mean project_id?)"}},
		{"unknown variable key", `
runners:
  - project_id: 42
    variable:
      scope: production
`, []string{"fleet.yaml:5: runners[0].variable.scope is not a known key (did you mean environment_scope?)", "expected one of key, project, group, instance, environment_scope, protected, hidden, variable_type"}},
		{"unknown top-level key", "runner:\n  - project_id: 42\n", []string{"fleet.yaml:1: runner is not a known key (did you mean runners?): expected one of runners", "the manifest has no runners: list"}},
		{"types (every error at once)", `
runners:
  - project_id: [42]
    run_untagged: "no"
    maximum_timeout: 1h
    tag_list: {a: b}
    description: true
`, []string{
			"fleet.yaml:3: runners[0].project_id is a list: expected a string",
			`fleet.yaml:4: runners[0].run_untagged is "no": expected true or false`,
			"fleet.yaml:5: runners[0].maximum_timeout is \"1h\": expected a whole number of seconds",
			"fleet.yaml:6: runners[0].tag_list is a mapping: expected a list of tags",
			"fleet.yaml:7: runners[0].description is true: expected a string (quote it if you mean the word)",
			"fleet.yaml has 5 errors; nothing was changed:\n",
		}},
		{"enums", `
runners:
  - runner_type: shared
    access_level: protected
    variable: {variable_type: yaml}
`, []string{
			`fleet.yaml:3: runners[0].runner_type is "shared": expected instance_type, group_type or project_type`,
			`fleet.yaml:4: runners[0].access_level is "protected": expected not_protected or ref_protected`,
			`fleet.yaml:5: runners[0].variable.variable_type is "yaml": expected env_var or file`,
		}},
		{"owner keys", `
runners:
  - description: no owner
  - runner_type: group_type
    project_id: 42
  - runner_type: instance_type
    group_id: 10
`, []string{
			"fleet.yaml:3: runners[0] is a project_type runner without project_id",
			"fleet.yaml:4: runners[1] is a group_type runner without group_id",
			"fleet.yaml:5: runners[1].project_id is given for a group_type runner",
			"fleet.yaml:7: runners[2].group_id is given for an instance_type runner",
		}},
		{"refs", `
runners:
  - project_id: /platform/deploy
  - project_id: 0
`, []string{
			`fleet.yaml:3: runners[0].project_id is "/platform/deploy": expected a numeric id or a full path`,
			"fleet.yaml:4: runners[1].project_id is 0: expected a positive numeric id",
		}},
		{"tags", `
runners:
  - project_id: 42
    run_untagged: false
  - project_id: 43
    tag_list: ["a,b", ""]
`, []string{
			"fleet.yaml:4: runners[0].run_untagged is false but tag_list is empty",
			`fleet.yaml:6: runners[1].tag_list[0] is "a,b": a tag cannot contain a comma`,
			"fleet.yaml:6: runners[1].tag_list[1] is empty",
		}},
		{"variable", `
runners:
  - project_id: 42
    variable: {key: "MY-KEY", project: 42, group: platform}
  - runner_type: instance_type
    variable: {environment_scope: production}
  - project_id: 43
    variable: {environment_scope: "bad scope"}
`, []string{
			`fleet.yaml:4: runners[0].variable.key is "MY-KEY": a variable key can contain only letters, digits and '_'`,
			"fleet.yaml:4: runners[0].variable has project and group: they exclude each other",
			`fleet.yaml:6: runners[1].variable.environment_scope is "production" but instance variables have no environment scope`,
			`fleet.yaml:8: runners[2].variable.environment_scope is "bad scope"`,
		}},
		{"duplicate key", `
runners:
  - project_id: 42
    description: a
    description: b
`, []string{"fleet.yaml:5: runners[0].description is given twice (first on line 4): keep one"}},
		{"duplicate variable target as written", `
runners:
  - project_id: 42
    description: a
  - project_id: 42
    description: b
  - project_id: Platform/Deploy
    variable: {key: K}
  - project_id: 43
    variable: {key: K, project: platform/deploy}
`, []string{
			"fleet.yaml:5: runners[1] stores its token in project 42 variable RUNNER_TOKEN (scope *), as runners[0] (line 3) does: each runner needs its own variable",
			"fleet.yaml:10: runners[3] stores its token in project platform/deploy variable K (scope *), as runners[2] (line 7) does",
		}},
		{"empty", "", []string{"fleet.yaml: the manifest is empty"}},
		{"empty list", "runners: []\n", []string{"fleet.yaml:1: runners is an empty list"}},
		{"not a mapping", "- project_id: 42\n", []string{"fleet.yaml:1: the manifest is a list: expected a mapping with a runners: list"}},
		{"syntax", "runners:\n  - project_id: 42\n   description: x\n", []string{"fleet.yaml:1: invalid YAML: did not find expected '-' indicator"}},
		{"two documents", "runners:\n  - project_id: 42\n---\nrunners: []\n", []string{"fleet.yaml:3: a second YAML document starts here: a manifest is one document"}},
		{"null value", "runners:\n  - project_id: 42\n    description:\n", []string{"fleet.yaml:3: runners[0].description has no value: give a string or remove the key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fleet.Parse("fleet.yaml", []byte(tc.yaml))
			assert.Assert(t, err != nil)
			assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage))
			for _, w := range tc.want {
				assert.Check(t, is.Contains(err.Error(), w))
			}
		})
	}
}

func TestParseReportsManyErrorsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("runners:\n")
	for i := range 40 {
		b.WriteString("  - project_id: 42\n    maximum_timeout: 1\n    variable: {key: K" + string(rune('A'+i%26)) + string(rune('A'+i/26)) + "}\n")
	}
	_, err := fleet.Parse("big.yaml", []byte(b.String()))
	assert.Assert(t, err != nil)
	assert.Check(t, is.Contains(err.Error(), "big.yaml has 40 errors"))
	assert.Check(t, is.Contains(err.Error(), "… and 15 more"))
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	_, err := fleet.Load(t.Context(), filepath.Join(dir, "missing.yaml"), nil)
	assert.Check(t, is.ErrorContains(err, "cannot read the manifest "+filepath.Join(dir, "missing.yaml")+": no such file or directory"))
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeUsage))

	path := filepath.Join(dir, "fleet.yaml")
	assert.NilError(t, os.WriteFile(path, []byte("runners:\n  - project_id: 42\n    maximum_timeout: 300\n"), 0o600))
	_, err = fleet.Load(t.Context(), path, nil)
	assert.Check(t, is.ErrorContains(err, path+":3: runners[0].maximum_timeout is 300"))
}
