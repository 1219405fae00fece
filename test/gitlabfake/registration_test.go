package gitlabfake

import (
	"net/http"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestApplicationSettingsAdminOnly(t *testing.T) {
	s, seed := NewTest(t)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/application/settings", seed.OwnerToken, nil), 403, forbidden)
	got := rawRequest(t, s, http.MethodGet, "/api/v4/application/settings", seed.AdminToken, nil)
	assert.Equal(t, got.Status, 200)
	settings := decode[map[string]any](t, got.Body)
	assert.Equal(t, settings["allow_runner_registration_token"], false)
	assert.Equal(t, settings["runners_registration_token"], nil)

	s.SetRegistrationTokensAllowed(true)
	settings = decode[map[string]any](t, rawRequest(t, s, http.MethodGet, "/api/v4/application/settings", seed.AdminToken, nil).Body)
	assert.Equal(t, settings["allow_runner_registration_token"], true)
	assert.Check(t, strings.HasPrefix(settings["runners_registration_token"].(string), "GR1348941"))
}

func TestRunnersTokenVisibilityAndNull(t *testing.T) {
	s, seed := NewTest(t)
	project := func(tok string) map[string]any {
		return decode[map[string]any](t, rawRequest(t, s, http.MethodGet, "/api/v4/projects/42", tok, nil).Body)
	}
	group := func(tok string) map[string]any {
		return decode[map[string]any](t, rawRequest(t, s, http.MethodGet, "/api/v4/groups/10", tok, nil).Body)
	}
	// Disallowed on the instance (the default): null for those who may see it.
	p := project(seed.MaintainerToken)
	v, present := p["runners_token"]
	assert.Check(t, present)
	assert.Check(t, is.Nil(v))
	_, present = project(seed.DeveloperToken)["runners_token"]
	assert.Check(t, !present, "a Developer must not see runners_token")

	s.SetRegistrationTokensAllowed(true)
	assert.Check(t, strings.HasPrefix(project(seed.MaintainerToken)["runners_token"].(string), "GR1348941"))
	assert.Check(t, strings.HasPrefix(group(seed.OwnerToken)["runners_token"].(string), "GR1348941"))
	_, present = group(seed.MaintainerToken)["runners_token"]
	assert.Check(t, !present, "a non-Owner must not see a group's runners_token")

	// The top-level group's own setting turns it off for the whole hierarchy.
	s.SetGroupRegistrationTokensAllowed("platform", false)
	assert.Check(t, is.Nil(project(seed.MaintainerToken)["runners_token"]))
	assert.Check(t, is.Nil(group(seed.OwnerToken)["runners_token"]))
}

func TestLegacyRegistrationCreatesRunner(t *testing.T) {
	s, seed := NewTest(t)
	tok := s.RegistrationToken("project", seed.DeployProjectID)
	body := map[string]any{"token": tok, "description": "legacy", "tag_list": "docker", "info": map[string]any{"version": "16.0.0"}}
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners", "", body), 410, `{"message":"410 Gone - runner registration disallowed"}`)

	s.SetRegistrationTokensAllowed(true)
	got := rawRequest(t, s, http.MethodPost, "/api/v4/runners", "", body)
	assert.Equal(t, got.Status, 201, got.Body)
	created := decode[map[string]any](t, got.Body)
	assert.Check(t, strings.HasPrefix(created["token"].(string), "glrtr-"))
	r, ok := s.Runner(int64(created["id"].(float64)))
	assert.Assert(t, ok)
	assert.Check(t, is.Equal(r.Type, "project_type"))
	assert.Check(t, is.DeepEqual(r.ProjectIDs, []int64{seed.DeployProjectID}))
	assert.Check(t, is.Len(r.Managers, 0), "registration creates no manager")

	// Managers appear when runner processes poll for jobs or verify.
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/jobs/request", "", map[string]any{"token": created["token"], "system_id": "s_000000000001", "info": map[string]any{"version": "16.0.0"}}), 204, "")
	assert.Equal(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": created["token"], "system_id": "s_000000000002"}).Status, 200)
	r, _ = s.Runner(r.ID)
	assert.Check(t, is.Len(r.Managers, 2))
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/jobs/request", "", map[string]any{"token": "glrt-nope"}), 403, forbidden)

	// An unknown token once registration is allowed is "invalid token supplied".
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners", "", map[string]any{"token": "GR1348941unknown"}), 403, `{"message":"403 Forbidden - invalid token supplied"}`)
}

func TestGraphQLRunnerFields(t *testing.T) {
	s, seed := NewTest(t)
	user := projectRunner(t, s, seed, nil)
	s.SetRegistrationTokensAllowed(true)
	reg := decode[map[string]any](t, rawRequest(t, s, http.MethodPost, "/api/v4/runners", "", map[string]any{"token": s.RegistrationToken("group", seed.PlatformGroupID)}).Body)
	legacyID := int64(reg["id"].(float64))
	rawRequest(t, s, http.MethodPost, "/api/v4/jobs/request", "", map[string]any{"token": reg["token"], "system_id": "s_000000000009", "info": map[string]any{"version": "15.11.0"}})

	query := `query($a: CiRunnerID!, $b: CiRunnerID!) {
  a: runner(id: $a) { id creationMethod createdBy { username } managers { count nodes { systemId version status } } }
  b: runner(id: $b) { id creationMethod createdBy { username } managers { count nodes { systemId version status } } }
}`
	vars := map[string]any{"a": "gid://gitlab/Ci::Runner/" + itoa(user.ID), "b": "gid://gitlab/Ci::Runner/" + itoa(legacyID)}
	got := rawRequest(t, s, http.MethodPost, "/api/graphql", seed.OwnerToken, map[string]any{"query": query, "variables": vars})
	assert.Equal(t, got.Status, 200, got.Body)
	want := `{"data":{"a":{"id":"gid://gitlab/Ci::Runner/` + itoa(user.ID) + `","creationMethod":"AUTHENTICATED_USER","createdBy":{"username":"maint"},"managers":{"count":0,"nodes":[]}},` +
		`"b":{"id":"gid://gitlab/Ci::Runner/` + itoa(legacyID) + `","creationMethod":"REGISTRATION_TOKEN","createdBy":null,"managers":{"count":1,"nodes":[{"systemId":"s_000000000009","version":"15.11.0","status":"ONLINE"}]}}}}`
	assert.Equal(t, got.Body, want)

	// A field GitLab does not have fails the whole query, as on GitLab.
	bad := rawRequest(t, s, http.MethodPost, "/api/graphql", seed.OwnerToken, map[string]any{"query": `{ runner(id: "gid://gitlab/Ci::Runner/` + itoa(user.ID) + `") { registrationType } }`})
	assert.Equal(t, bad.Status, 200)
	assert.Check(t, is.Contains(bad.Body, `"errors"`))
	assert.Check(t, is.Contains(bad.Body, "registrationType"))
	assert.Check(t, !strings.Contains(bad.Body, `"data":{`))

	// A runner the user may not read is null; a bad token is refused.
	other := rawRequest(t, s, http.MethodPost, "/api/graphql", seed.DeveloperToken, map[string]any{"query": query, "variables": vars})
	assert.Check(t, is.Contains(other.Body, `"a":null`))
	assert.Equal(t, rawRequest(t, s, http.MethodPost, "/api/graphql", "glpat-nope", map[string]any{"query": query}).Status, 401)
	assert.Equal(t, rawRequest(t, s, http.MethodPost, "/api/graphql", seed.CreateRunnerOnlyToken, map[string]any{"query": query}).Status, 403)
}

// Before 17.0 CiRunner has no creationMethod: asking for it fails the query, as on GitLab.
func TestGraphQLCreationMethodFrom17(t *testing.T) {
	s, seed := NewTest(t, GitLab("16.11.0", ""))
	r := projectRunner(t, s, seed, nil)
	q := func(fields string) rawResponse {
		return rawRequest(t, s, http.MethodPost, "/api/graphql", seed.OwnerToken, map[string]any{"query": `{ runner(id: "gid://gitlab/Ci::Runner/` + itoa(r.ID) + `") { ` + fields + ` } }`})
	}
	assert.Check(t, is.Contains(q("id creationMethod").Body, `"errors"`))
	assert.Check(t, is.Contains(q("id createdAt").Body, `"data":{"runner":{"id"`))
}
