package gitlabfake

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const runnerTokenValue = "glrt-t3_abcDEF123-xyz_0987q"

func TestProjectVariableLifecycle(t *testing.T) {
	s, seed := NewTest(t)
	c := client(t, s, seed.MaintainerToken)

	v, resp, err := c.ProjectVariables.CreateVariable("platform/deploy", &gitlab.CreateProjectVariableOptions{
		Key:         new("RUNNER_TOKEN"),
		Value:       new(runnerTokenValue),
		Masked:      new(true),
		Protected:   new(true),
		Description: new("managed by runner-bootstrap"),
	})
	assert.NilError(t, err)
	assert.Equal(t, resp.StatusCode, http.StatusCreated)
	assert.Equal(t, v.Value, runnerTokenValue) // masked, not hidden: the value is returned
	assert.Equal(t, v.EnvironmentScope, "*")

	got, ok := s.Variable("project", seed.DeployProjectID, "RUNNER_TOKEN", "*")
	assert.Assert(t, ok)
	assert.DeepEqual(t, got, Variable{
		Owner: "project", OwnerID: 42, Key: "RUNNER_TOKEN", Value: runnerTokenValue, EnvironmentScope: "*",
		Description: "managed by runner-bootstrap", VariableType: "env_var", Protected: true, Masked: true,
	})

	raw := rawRequest(t, s, http.MethodGet, "/api/v4/projects/42/variables/RUNNER_TOKEN", seed.MaintainerToken, nil)
	assertResponse(t, raw, http.StatusOK, `{"variable_type":"env_var","key":"RUNNER_TOKEN","value":"`+runnerTokenValue+`","hidden":false,`+
		`"protected":true,"masked":true,"raw":false,"environment_scope":"*","description":"managed by runner-bootstrap"}`)

	v, _, err = c.ProjectVariables.UpdateVariable(seed.DeployProjectID, "RUNNER_TOKEN", &gitlab.UpdateProjectVariableOptions{
		Value:  new("glrt-t3_newNEWnew123-xyz_0987q"),
		Filter: &gitlab.VariableFilter{EnvironmentScope: "*"},
	})
	assert.NilError(t, err)
	assert.Equal(t, v.Value, "glrt-t3_newNEWnew123-xyz_0987q")
	assert.Check(t, v.Masked && v.Protected)

	_, err = c.ProjectVariables.RemoveVariable(seed.DeployProjectID, "RUNNER_TOKEN", nil)
	assert.NilError(t, err)
	_, _, err = c.ProjectVariables.GetVariable(seed.DeployProjectID, "RUNNER_TOKEN", nil)
	assert.Check(t, errors.Is(err, gitlab.ErrNotFound))
	assert.Equal(t, len(s.Variables()), 0)

	// URL-encoded path requests are recorded unescaped.
	reqs := s.Requests()
	assert.Equal(t, reqs[0].Path, "/api/v4/projects/platform/deploy/variables")
	assert.Equal(t, reqs[0].RawPath, "/api/v4/projects/platform%2Fdeploy/variables")
	assert.Check(t, !strings.Contains(reqs[0].Body, runnerTokenValue), reqs[0].Body)
	assert.Equal(t, s.Writes(), 3)
}

func TestProjectVariableErrors(t *testing.T) {
	s, seed := NewTest(t)
	path := "/api/v4/projects/42/variables"
	rawRequest(t, s, http.MethodPost, path, seed.MaintainerToken, map[string]any{"key": "DUP", "value": "x"})

	for _, tc := range []struct {
		name   string
		token  string
		params any
		status int
		body   string
	}{
		{"missing key and value", seed.MaintainerToken, map[string]any{}, 400, `{"error":"key is missing, value is missing"}`},
		{"bad key", seed.MaintainerToken, map[string]any{"key": "BAD-KEY", "value": "x"}, 400,
			`{"message":{"key":["can contain only letters, digits and '_'."]}}`},
		{"blank key", seed.MaintainerToken, map[string]any{"key": "  ", "value": "x"}, 400,
			`{"message":{"key":["can't be blank","can contain only letters, digits and '_'."]}}`},
		{"duplicate", seed.MaintainerToken, map[string]any{"key": "DUP", "value": "y"}, 400,
			`{"message":{"key":["(DUP) has already been taken"]}}`},
		{"masked too short", seed.MaintainerToken, map[string]any{"key": "M", "value": "short", "masked": true}, 400,
			`{"message":{"value":["is invalid"]}}`},
		{"masked with space", seed.MaintainerToken, map[string]any{"key": "M", "value": "has a space in it", "masked": true}, 400,
			`{"message":{"value":["is invalid"]}}`},
		{"masked with forbidden char", seed.MaintainerToken, map[string]any{"key": "M", "value": "abcdefgh!", "masked": true}, 400,
			`{"message":{"value":["is invalid"]}}`},
		{"masked raw with space", seed.MaintainerToken, map[string]any{"key": "M", "value": "abcd efgh", "masked": true, "raw": true}, 400,
			`{"message":{"value":["is invalid"]}}`},
		{"hidden with bad value", seed.MaintainerToken, map[string]any{"key": "M", "value": "short", "masked_and_hidden": true}, 400,
			`{"message":{"value":["is invalid"]}}`},
		{"long description", seed.MaintainerToken, map[string]any{"key": "D", "value": "x", "description": strings.Repeat("d", 256)}, 400,
			`{"message":{"description":["is too long (maximum is 255 characters)"]}}`},
		{"bad variable_type", seed.MaintainerToken, map[string]any{"key": "T", "value": "x", "variable_type": "yaml"}, 400,
			`{"error":"variable_type does not have a valid value"}`},
		{"bad environment scope", seed.MaintainerToken, map[string]any{"key": "E", "value": "x", "environment_scope": "prod|dev"}, 400,
			`{"message":{"environment_scope":["can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', '*' and spaces"]}}`},
		{"developer", seed.DeveloperToken, map[string]any{"key": "K", "value": "x"}, 403, forbidden},
		{"invisible project", seed.OwnerToken, "", 404, `{"message":"404 Project Not Found"}`},
		{"invalid JSON", seed.MaintainerToken, `{"key":`, 400, `{"error":"message body does not match declared format"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := path
			if tc.name == "invisible project" {
				p = "/api/v4/projects/other%2Fapp/variables"
				tc.params = map[string]any{"key": "K", "value": "x"}
			}
			assertResponse(t, rawRequest(t, s, http.MethodPost, p, tc.token, tc.params), tc.status, tc.body)
		})
	}
	assert.Equal(t, len(s.Variables()), 1)

	// Valid masked values: the Base64 alphabet plus @:.~ and, with raw, any non-space.
	for i, value := range []string{runnerTokenValue, "a+b/c=d@e:f.g~h-i_j", "12345678"} {
		resp := rawRequest(t, s, http.MethodPost, path, seed.MaintainerToken, map[string]any{"key": fmt.Sprintf("OK%d", i), "value": value, "masked": true})
		assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)
	}
	resp := rawRequest(t, s, http.MethodPost, path, seed.MaintainerToken, map[string]any{"key": "RAW", "value": "!!$$%%^^", "masked": "true", "raw": "true"})
	assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)

	_, _, err := client(t, s, seed.MaintainerToken).ProjectVariables.CreateVariable(42, &gitlab.CreateProjectVariableOptions{Key: new("DUP"), Value: new("z")})
	assert.Check(t, gitlab.HasStatusCode(err, http.StatusBadRequest))
	assert.ErrorContains(t, err, "{message: {key: [(DUP) has already been taken]}}")
}

func TestHiddenVariables(t *testing.T) {
	s, seed := NewTest(t)
	path := "/api/v4/projects/42/variables"

	// masked_and_hidden forces masked, and the value is never returned, not even by POST.
	resp := rawRequest(t, s, http.MethodPost, path, seed.MaintainerToken, map[string]any{"key": "H", "value": runnerTokenValue, "masked_and_hidden": true, "masked": false})
	assertResponse(t, resp, http.StatusCreated, `{"variable_type":"env_var","key":"H","value":null,"hidden":true,"protected":false,"masked":true,"raw":false,"environment_scope":"*","description":null}`)
	stored, _ := s.Variable("project", 42, "H", "*")
	assert.Equal(t, stored.Value, runnerTokenValue)
	assert.Check(t, stored.Hidden && stored.Masked)

	assert.Check(t, is.Contains(rawRequest(t, s, http.MethodGet, path+"/H", seed.MaintainerToken, nil).Body, `"value":null`))
	assert.Check(t, is.Contains(rawRequest(t, s, http.MethodGet, path, seed.MaintainerToken, nil).Body, `"value":null`))

	// The value of a hidden variable can be updated.
	c := client(t, s, seed.MaintainerToken)
	v, _, err := c.ProjectVariables.UpdateVariable(42, "H", &gitlab.UpdateProjectVariableOptions{Value: new("glrt-t3_rotatedRotated123456")})
	assert.NilError(t, err)
	assert.Equal(t, v.Value, "")
	assert.Check(t, v.Hidden)
	stored, _ = s.Variable("project", 42, "H", "*")
	assert.Equal(t, stored.Value, "glrt-t3_rotatedRotated123456")
	// masked=true on a hidden variable is no change, so it is fine.
	_, _, err = c.ProjectVariables.UpdateVariable(42, "H", &gitlab.UpdateProjectVariableOptions{Masked: new(true), Protected: new(true)})
	assert.NilError(t, err)

	assertResponse(t, rawRequest(t, s, http.MethodPut, path+"/H", seed.MaintainerToken, map[string]any{"masked": false}), 400,
		`{"message":{"base":["The visibility setting cannot be changed for masked and hidden variables."]}}`)
	assertResponse(t, rawRequest(t, s, http.MethodPut, path+"/H", seed.MaintainerToken, map[string]any{"masked_and_hidden": false}), 400,
		`{"message":{"base":["Only new variables can be set as masked and hidden."]}}`)
	assertResponse(t, rawRequest(t, s, http.MethodPut, path+"/H", seed.MaintainerToken, map[string]any{"value": "bad value"}), 400,
		`{"message":{"value":["is invalid"]}}`)

	rawRequest(t, s, http.MethodPost, path, seed.MaintainerToken, map[string]any{"key": "PLAIN", "value": runnerTokenValue})
	assertResponse(t, rawRequest(t, s, http.MethodPut, path+"/PLAIN", seed.MaintainerToken, map[string]any{"masked_and_hidden": true}), 400,
		`{"message":{"base":["Only new variables can be set as masked and hidden."]}}`)
	stored, _ = s.Variable("project", 42, "PLAIN", "*")
	assert.Check(t, !stored.Hidden && !stored.Masked)
}

func TestVariableScopes(t *testing.T) {
	s, seed := NewTest(t)
	c := client(t, s, seed.MaintainerToken)
	for _, scope := range []string{"production", "staging"} {
		_, _, err := c.ProjectVariables.CreateVariable(42, &gitlab.CreateProjectVariableOptions{
			Key: new("TOKEN"), Value: new("v-" + scope), EnvironmentScope: new(scope),
		})
		assert.NilError(t, err)
	}
	conflict := `{"message":"There are multiple variables with provided parameters. Please use 'filter[environment_scope]'"}`
	path := "/api/v4/projects/42/variables/TOKEN"

	assertResponse(t, rawRequest(t, s, http.MethodGet, path, seed.MaintainerToken, nil), 409, conflict)
	assertResponse(t, rawRequest(t, s, http.MethodPut, path, seed.MaintainerToken, map[string]any{"value": "x"}), 409, conflict)
	assertResponse(t, rawRequest(t, s, http.MethodDelete, path, seed.MaintainerToken, nil), 409, conflict)
	assertResponse(t, rawRequest(t, s, http.MethodGet, path+"?filter[environment_scope]=dev", seed.MaintainerToken, nil), 404, `{"message":"404 Variable Not Found"}`)

	v, _, err := c.ProjectVariables.GetVariable(42, "TOKEN", &gitlab.GetProjectVariableOptions{Filter: &gitlab.VariableFilter{EnvironmentScope: "staging"}})
	assert.NilError(t, err)
	assert.Equal(t, v.Value, "v-staging")

	// The filter also works in a JSON body.
	resp := rawRequest(t, s, http.MethodPut, path, seed.MaintainerToken, map[string]any{"value": "v2", "filter": map[string]any{"environment_scope": "production"}})
	assert.Equal(t, resp.Status, http.StatusOK, resp.Body)
	stored, _ := s.Variable("project", 42, "TOKEN", "production")
	assert.Equal(t, stored.Value, "v2")

	// Moving a variable onto a taken scope is a uniqueness error.
	_, _, err = c.ProjectVariables.UpdateVariable(42, "TOKEN", &gitlab.UpdateProjectVariableOptions{
		EnvironmentScope: new("staging"), Filter: &gitlab.VariableFilter{EnvironmentScope: "production"},
	})
	assert.ErrorContains(t, err, "(TOKEN) has already been taken")

	_, err = c.ProjectVariables.RemoveVariable(42, "TOKEN", &gitlab.RemoveProjectVariableOptions{Filter: &gitlab.VariableFilter{EnvironmentScope: "staging"}})
	assert.NilError(t, err)
	assert.Equal(t, rawRequest(t, s, http.MethodGet, path, seed.MaintainerToken, nil).Status, http.StatusOK)
}

func TestVariablesPagination(t *testing.T) {
	s, seed := NewTest(t)
	for i := range 25 {
		rawRequest(t, s, http.MethodPost, "/api/v4/projects/42/variables", seed.MaintainerToken, map[string]any{"key": fmt.Sprintf("K%02d", i), "value": "v"})
	}
	c := client(t, s, seed.ReadAPIToken)
	page1, resp, err := c.ProjectVariables.ListVariables(42, nil)
	assert.NilError(t, err)
	assert.Equal(t, len(page1), 20)
	assert.Equal(t, resp.TotalItems, int64(25))
	assert.Equal(t, resp.NextPage, int64(2))
	page2, _, err := c.ProjectVariables.ListVariables(42, &gitlab.ListProjectVariablesOptions{ListOptions: gitlab.ListOptions{Page: 2}})
	assert.NilError(t, err)
	assert.Equal(t, len(page2), 5)
	assert.Equal(t, page2[4].Key, "K24")
}

func TestGroupVariables(t *testing.T) {
	s, seed := NewTest(t)
	c := client(t, s, seed.OwnerToken)

	v, _, err := c.GroupVariables.CreateVariable("platform", &gitlab.CreateGroupVariableOptions{
		Key: new("RUNNER_TOKEN"), Value: new(runnerTokenValue), MaskedAndHidden: new(true), EnvironmentScope: new("production"),
	})
	assert.NilError(t, err)
	assert.Check(t, v.Hidden && v.Masked)
	assert.Equal(t, v.Value, "")
	_, _, err = c.GroupVariables.CreateVariable(10, &gitlab.CreateGroupVariableOptions{
		Key: new("RUNNER_TOKEN"), Value: new("staging-value"), EnvironmentScope: new("staging"),
	})
	assert.NilError(t, err)

	path := "/api/v4/groups/10/variables/RUNNER_TOKEN"
	// Without a filter, PUT picks a record by key alone (the oldest here)...
	resp := rawRequest(t, s, http.MethodPut, path, seed.OwnerToken, map[string]any{"value": "glrt-t2_updatedUpdated1234"})
	assert.Equal(t, resp.Status, http.StatusOK, resp.Body)
	stored, _ := s.Variable("group", 10, "RUNNER_TOKEN", "production")
	assert.Equal(t, stored.Value, "glrt-t2_updatedUpdated1234")
	// ...but GET and DELETE are strict.
	assert.Equal(t, rawRequest(t, s, http.MethodGet, path, seed.OwnerToken, nil).Status, http.StatusConflict)
	assert.Equal(t, rawRequest(t, s, http.MethodDelete, path, seed.OwnerToken, nil).Status, http.StatusConflict)
	// With a filter PUT is strict too.
	assertResponse(t, rawRequest(t, s, http.MethodPut, path+"?filter[environment_scope]=dev", seed.OwnerToken, map[string]any{"value": "x"}),
		404, `{"message":"404 GroupVariable Not Found"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/groups/10/variables/NOPE", seed.OwnerToken, nil),
		404, `{"message":"404 GroupVariable Not Found"}`)

	// Group variables need the Owner role. maint can see the group (through its
	// project) but is not an owner; other is invisible to owner.
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/groups/10/variables", seed.MaintainerToken, nil), 403, forbidden)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/groups/other/variables", seed.OwnerToken, nil), 404, `{"message":"404 Group Not Found"}`)
	s.SetRole("maint", "platform/runners", Owner)
	assert.Equal(t, rawRequest(t, s, http.MethodGet, "/api/v4/groups/platform%2Frunners/variables", seed.MaintainerToken, nil).Status, http.StatusOK)

	// Booleans may be strings (the group API declares them as String).
	resp = rawRequest(t, s, http.MethodPost, "/api/v4/groups/10/variables", seed.OwnerToken, map[string]any{"key": "S", "value": "v", "protected": "true"})
	assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)
	stored, _ = s.Variable("group", 10, "S", "*")
	assert.Check(t, stored.Protected)
}

func TestInstanceVariables(t *testing.T) {
	s, seed := NewTest(t)
	path := "/api/v4/admin/ci/variables"

	resp := rawRequest(t, s, http.MethodPost, path, seed.AdminToken, map[string]any{
		"key": "RUNNER_TOKEN", "value": runnerTokenValue, "masked_and_hidden": true, "environment_scope": "production",
	})
	assertResponse(t, resp, http.StatusCreated, `{"variable_type":"env_var","key":"RUNNER_TOKEN","value":"`+runnerTokenValue+`","protected":false,"masked":false,"raw":false,"description":null}`)
	stored, ok := s.Variable("instance", 0, "RUNNER_TOKEN", "*")
	assert.Assert(t, ok)
	assert.Check(t, !stored.Hidden)
	assert.Equal(t, stored.EnvironmentScope, "*")

	assertResponse(t, rawRequest(t, s, http.MethodPost, path, seed.AdminToken, map[string]any{"key": "RUNNER_TOKEN", "value": "x", "environment_scope": "other"}),
		400, `{"message":{"key":["(RUNNER_TOKEN) has already been taken"]}}`)
	assertResponse(t, rawRequest(t, s, http.MethodPost, path, seed.AdminToken, map[string]any{"key": "BIG", "value": strings.Repeat("x", 10001)}),
		400, `{"message":{"value":["The value of the provided variable exceeds the 10000 character limit"]}}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, path+"/NOPE", seed.AdminToken, nil), 404, `{"message":"404 InstanceVariable Not Found"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, path, seed.OwnerToken, nil), 403, forbidden)

	c := client(t, s, seed.AdminToken)
	v, _, err := c.InstanceVariables.UpdateVariable("RUNNER_TOKEN", &gitlab.UpdateInstanceVariableOptions{Masked: new(true)})
	assert.NilError(t, err)
	assert.Check(t, v.Masked)
	_, err = c.InstanceVariables.RemoveVariable("RUNNER_TOKEN")
	assert.NilError(t, err)
	assert.Equal(t, len(s.Variables()), 0)
}
