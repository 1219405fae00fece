package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const (
	ciSchemaPath     = repoRoot + "/third_party/gitlab-ci-schema/ci.json"
	headerSchemaPath = "testdata/spec-header.schema.json"
)

var (
	schemasOnce              sync.Once
	ciSchema, headerSchema   *jsonschema.Schema
	errCISchema, errHdSchema error
)

// loadSchemas compiles GitLab's CI schema (for job bodies) and the header schema.
func loadSchemas(t *testing.T) (ci, header *jsonschema.Schema) {
	t.Helper()
	schemasOnce.Do(func() {
		ciSchema, errCISchema = compileSchema(ciSchemaPath)
		headerSchema, errHdSchema = compileSchema(headerSchemaPath)
	})
	assert.NilError(t, errCISchema)
	assert.NilError(t, errHdSchema)
	return ciSchema, headerSchema
}

func compileSchema(path string) (*jsonschema.Schema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(abs, doc); err != nil {
		return nil, fmt.Errorf("add %s: %w", path, err)
	}
	return c.Compile(abs)
}

// overrides is a valid non-default value for every input any component declares; every
// input must appear here, so a new input cannot escape the all-overridden checks.
var overrides = map[string]any{
	"as":                         "runners:create",
	"stage":                      "infra",
	"image":                      "registry.example.com/tools/runner-bootstrap:v1.2.3",
	"rules":                      []any{map[string]any{"if": `$CI_PIPELINE_SOURCE == "schedule"`}, map[string]any{"when": "manual", "allow_failure": true}},
	"runner_type":                "group_type",
	"project_id":                 "platform/deploy",
	"group_id":                   "10",
	"description":                "deploy runner: linux, \"quoted\" and $literal",
	"tag_list":                   "docker,linux",
	"run_untagged":               false,
	"locked":                     true,
	"access_level":               "ref_protected",
	"maximum_timeout":            3600,
	"paused":                     true,
	"maintenance_note":           "owned by #platform",
	"token_expires_in":           "168h",
	"token_rotation_deadline_in": "24h",
	"variable_key":               "DEPLOY_RUNNER_TOKEN",
	"variable_project":           "42",
	"variable_group":             "platform/runners",
	"variable_instance":          true,
	"variable_environment_scope": "review/*",
	"variable_protected":         false,
	"variable_hidden":            false,
	"variable_type":              "file",
	"if_expiring_within":         "72h",
	"use_runner_token":           true,
	"log_level":                  "debug",
	"file":                       "infra/fleet.yaml",
	"parallel":                   4,
	"concurrency":                4,
	"dry_run":                    true,
	"prune":                      true,
	"timeout":                    "1h",
	"include_subgroups":          false,
	"fail_on":                    "critical",
	"warn_within":                "72h",
}

// contract lists the inputs fixed by the product contract (shared/contract.md) with the
// defaults it fixes; nil means the contract names the input but not its default.
var contract = map[string]map[string]any{
	"create-runner": {
		"as": "create-runner", "stage": nil, "image": nil, "rules": []any{map[string]any{"when": "on_success"}},
		"runner_type": "project_type", "project_id": "$CI_PROJECT_ID", "group_id": nil, "description": nil,
		"tag_list": nil, "run_untagged": true, "locked": nil, "access_level": nil, "maximum_timeout": nil,
		"paused": nil, "variable_key": "RUNNER_TOKEN",
	},
	// "Component defaults revised": rotate-token runs by itself only in pipelines started on
	// purpose, and is a manual job (not blocking the pipeline) everywhere else.
	"rotate-token": {
		"as": "rotate-token", "stage": nil, "image": nil, "rules": []any{
			map[string]any{"if": `$CI_PIPELINE_SOURCE =~ /^(schedule|api|trigger|web)$/`},
			map[string]any{"when": "manual", "allow_failure": true},
		},
		"project_id": "$CI_PROJECT_ID", "group_id": nil, "variable_key": "RUNNER_TOKEN", "if_expiring_within": nil,
	},
	"delete-runner": {
		"as": "delete-runner", "stage": nil, "image": nil, "rules": []any{map[string]any{"when": "on_success"}},
		"project_id": "$CI_PROJECT_ID", "group_id": nil, "variable_key": "RUNNER_TOKEN",
	},
	// apply-fleet is not in the contract; its job inputs follow the same conventions.
	"apply-fleet": {
		"as": "apply-fleet", "stage": nil, "image": nil, "rules": []any{map[string]any{"when": "on_success"}},
	},
	"audit": {
		"as": "audit", "stage": nil, "image": nil, "rules": []any{map[string]any{"when": "on_success"}},
		"group_id": nil, "project_id": nil, "include_subgroups": nil, "fail_on": "high", "warn_within": nil,
	},
}

// readOnly are the components whose job only reads: they need no resource group and may be
// interrupted.
var readOnly = map[string]bool{"audit": true}

// contractTypes are the input types the contract implies.
var contractTypes = map[string]string{
	"rules": "array", "run_untagged": "boolean", "locked": "boolean", "paused": "boolean",
	"maximum_timeout": "number", "project_id": "string", "group_id": "string", "tag_list": "string",
}

func TestTemplateHeaderSchema(t *testing.T) {
	_, header := loadSchemas(t)
	for _, name := range components {
		t.Run(name, func(t *testing.T) {
			c := loadComponent(t, name)
			assert.NilError(t, header.Validate(toJSONValue(t, c.Header)))
		})
	}
}

func TestTemplateBodySchema(t *testing.T) {
	ci, _ := loadSchemas(t)
	for _, name := range components {
		c := loadComponent(t, name)
		t.Run(name+"/defaults", func(t *testing.T) {
			body, used := c.render(t, nil)
			assert.NilError(t, ci.Validate(toJSONValue(t, body)))
			checkJob(t, c, body, c.defaults()["as"].(string))
			for _, in := range c.Inputs {
				assert.Check(t, used[in.Name], "input %s is declared but the job never uses it", in.Name)
			}
		})
		t.Run(name+"/all-overridden", func(t *testing.T) {
			values := map[string]any{}
			for _, in := range c.Inputs {
				v, ok := overrides[in.Name]
				assert.Assert(t, ok, "add input %s to overrides", in.Name)
				assert.NilError(t, in.checkValue(v))
				values[in.Name] = v
			}
			body, _ := c.render(t, values)
			assert.NilError(t, ci.Validate(toJSONValue(t, body)))
			checkJob(t, c, body, overrides["as"].(string))
		})
	}
}

// checkJob checks the shape every component job has: one job named by `as`, rules from
// the input, a resource group, and inputs reaching the script only through variables.
func checkJob(t *testing.T, c component, body *yaml.Node, jobName string) {
	t.Helper()
	root := body.Content[0]
	assert.Assert(t, is.Len(root.Content, 2), "%s: the body must be exactly one job and nothing global", c.Path)
	assert.Check(t, is.Equal(root.Content[0].Value, jobName))
	job := root.Content[1]
	keys := []string{"stage", "image", "rules", "variables", "script"}
	if !readOnly[c.Name] {
		keys = append(keys, "resource_group")
	}
	for _, key := range keys {
		assert.Check(t, mappingValue(job, key) != nil, "%s: the job has no %s", c.Path, key)
	}
	assert.Check(t, is.Equal(mappingValue(job, "rules").Kind, yaml.SequenceNode), "%s: rules must come from the array input", c.Path)
	assert.Check(t, is.Equal(mappingValue(job, "interruptible").Value, strconv.FormatBool(readOnly[c.Name])))
}

func TestTemplateInputs(t *testing.T) {
	for _, name := range components {
		t.Run(name, func(t *testing.T) {
			c := loadComponent(t, name)
			for _, in := range c.Inputs {
				assert.Check(t, in.Type != "", "%s: give input %s a type", c.Path, in.Name)
				assert.Check(t, strings.TrimSpace(in.Description) != "", "%s: describe input %s", c.Path, in.Name)
				assert.Check(t, in.HasDefault, "%s: input %s needs a default: every job works with no inputs", c.Path, in.Name)
				if in.HasDefault {
					assert.Check(t, in.checkValue(in.Default), "%s: default", c.Path)
				}
			}
			for key, def := range contract[name] {
				in, ok := c.input(key)
				if !assert.Check(t, ok, "%s: the contract's input %s is missing", c.Path, key) {
					continue
				}
				if typ, ok := contractTypes[key]; ok {
					assert.Check(t, is.Equal(in.typeName(), typ), "%s: %s", c.Path, key)
				}
				if def != nil {
					assert.Check(t, is.DeepEqual(in.Default, def), "%s: default of %s", c.Path, key)
				}
			}
		})
	}
}

// TestTemplateScriptTakesNoRawInputs checks that inputs reach the binary only through
// job variables: no $[[ ]] in any script, and each RB_ variable is one whole input.
func TestTemplateScriptTakesNoRawInputs(t *testing.T) {
	whole := regexp.MustCompile(`^\$\[\[ inputs\.[a-z_]+ \]\]$`)
	for _, name := range components {
		t.Run(name, func(t *testing.T) {
			c := loadComponent(t, name)
			var doc yaml.Node
			assert.NilError(t, yaml.Unmarshal([]byte(c.Body), &doc))
			job := doc.Content[0].Content[1]
			for _, key := range []string{"before_script", "script", "after_script"} {
				if n := mappingValue(job, key); n != nil {
					out, err := yaml.Marshal(n)
					assert.NilError(t, err)
					assert.Check(t, !strings.Contains(string(out), "$[["), "%s: %s pastes an input; pass it through variables:", c.Path, key)
				}
			}
			vars := mappingValue(job, "variables")
			for i := 0; i+1 < len(vars.Content); i += 2 {
				k, v := vars.Content[i].Value, vars.Content[i+1].Value
				if strings.HasPrefix(k, "RB_") {
					assert.Check(t, whole.MatchString(v), "%s: variable %s should be exactly one input, got %q", c.Path, k, v)
				}
			}
		})
	}
}

// TestProjectPipelineIncludes checks the project's own .gitlab-ci.yml against the
// components it includes: gitlab-ci-local ignores unknown inputs, GitLab rejects them.
func TestProjectPipelineIncludes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".gitlab-ci.yml"))
	if os.IsNotExist(err) {
		t.Skip("no .gitlab-ci.yml")
	}
	assert.NilError(t, err)
	var doc struct {
		Include []struct {
			Component string         `yaml:"component"`
			Inputs    map[string]any `yaml:"inputs"`
		} `yaml:"include"`
	}
	assert.NilError(t, yaml.Unmarshal(raw, &doc))
	ref := regexp.MustCompile(`^\$CI_SERVER_FQDN/\$CI_PROJECT_PATH/([a-z-]+)@\$CI_COMMIT_SHA$`)
	seen := 0
	for _, inc := range doc.Include {
		m := ref.FindStringSubmatch(inc.Component)
		if m == nil {
			continue
		}
		seen++
		assert.Check(t, slices.Contains(components, m[1]), "unknown component %s", m[1])
		if !slices.Contains(components, m[1]) {
			continue
		}
		c := loadComponent(t, m[1])
		// Included by SHA, $[[ component.version ]] is empty and the default image has no tag.
		assert.Check(t, inc.Inputs["image"] != nil, ".gitlab-ci.yml includes %s at a SHA: it must set image", m[1])
		for k, v := range inc.Inputs {
			in, ok := c.input(k)
			if assert.Check(t, ok, ".gitlab-ci.yml passes %s an unknown input %s", m[1], k) {
				assert.Check(t, in.checkValue(v), ".gitlab-ci.yml, component %s", m[1])
			}
		}
	}
	assert.Check(t, seen > 0, ".gitlab-ci.yml includes no component at $CI_COMMIT_SHA")
}
