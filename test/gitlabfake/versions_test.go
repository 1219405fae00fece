package gitlabfake

import (
	"net/http"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// Each case is one row of the version matrix, on the release just before and the one that has it.

func TestVersionMetadata(t *testing.T) {
	s, seed := NewTest(t, GitLab("16.11.2-ee", TierFree))
	want := `{"enterprise":true,"kas":{"enabled":false,"externalUrl":null,"version":null},"revision":"f4k3r3v1510n","version":"16.11.2-ee"}`
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/metadata", seed.ReadAPIToken, nil), 200, want)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/version", seed.OwnerToken, nil), 200, want)
	// #19: a create_runner-only token may not read it.
	got := rawRequest(t, s, http.MethodGet, "/api/v4/metadata", seed.CreateRunnerOnlyToken, nil)
	assert.Equal(t, got.Status, http.StatusForbidden)
	assert.Check(t, is.Contains(got.Body, `"scope":"api read_api read_user ai_features"`))

	ce, ceSeed := NewTest(t, GitLab("17.3.0", ""))
	assert.Check(t, is.Contains(rawRequest(t, ce, http.MethodGet, "/api/v4/metadata", ceSeed.OwnerToken, nil).Body, `"enterprise":false`))
	assert.Check(t, is.Contains(rawRequest(t, ce, http.MethodGet, "/api/v4/metadata", ceSeed.OwnerToken, nil).Body, `"version":"17.3.0"`))
}

func TestVersionScopes(t *testing.T) {
	// #3: before 16.2 a create_runner token cannot create runners (the scope does not exist).
	old, seed := NewTest(t, GitLab("16.1.0-ee", ""))
	resp := rawRequest(t, old, http.MethodPost, "/api/v4/user/runners", seed.CreateRunnerOnlyToken, map[string]any{"runner_type": "instance_type"})
	assert.Equal(t, resp.Status, http.StatusForbidden)
	assert.Check(t, is.Contains(resp.Body, `"scope":"api"`))
	newer, seed2 := NewTest(t, GitLab("16.2.0-ee", ""))
	resp = rawRequest(t, newer, http.MethodPost, "/api/v4/user/runners", seed2.CreateRunnerOnlyToken, map[string]any{"runner_type": "group_type", "group_id": 10})
	assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)
}

func TestVersionTokenSelfAndMembers(t *testing.T) {
	s, seed := NewTest(t)
	tok := s.AddToken("owner", []string{"create_runner"}, TokenExpiresOn(time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)))
	got := rawRequest(t, s, http.MethodGet, "/api/v4/personal_access_tokens/self", tok, nil)
	assert.Equal(t, got.Status, 200)
	assert.Check(t, is.Contains(got.Body, `"scopes":["create_runner"]`))
	assert.Check(t, is.Contains(got.Body, `"expires_at":"2027-01-02"`))

	me := rawRequest(t, s, http.MethodGet, "/api/v4/user", seed.OwnerToken, nil)
	assert.Check(t, is.Contains(me.Body, `"username":"owner"`))
	assert.Check(t, is.Contains(rawRequest(t, s, http.MethodGet, "/api/v4/projects/42/members/all/2", seed.OwnerToken, nil).Body, `"access_level":50`))
	assert.Check(t, is.Contains(rawRequest(t, s, http.MethodGet, "/api/v4/groups/10/members/all/2", seed.OwnerToken, nil).Body, `"access_level":50`))
	assert.Equal(t, rawRequest(t, s, http.MethodGet, "/api/v4/groups/10/members/all/3", seed.OwnerToken, nil).Status, 404)
}

func TestVersionManagersRoute(t *testing.T) {
	// #9: no managers route before 17.1.
	for v, status := range map[string]int{"17.0.5-ee": 404, "17.1.0-ee": 200} {
		s, seed := NewTest(t, GitLab(v, ""))
		r := mustCreateRunner(t, s, seed.MaintainerToken, map[string]any{"runner_type": "project_type", "project_id": 42})
		got := rawRequest(t, s, http.MethodGet, "/api/v4/runners/"+itoa(r.ID)+"/managers", seed.MaintainerToken, nil)
		assert.Equal(t, got.Status, status, v)
		if status == 404 {
			assert.Equal(t, got.Body, `{"error":"404 Not Found"}`)
		}
	}
}

func TestVersionVariableDescriptionAndHidden(t *testing.T) {
	body := map[string]any{"key": "K", "value": runnerTokenValue, "masked_and_hidden": true, "description": "d"}
	cases := []struct {
		version string
		want    string
	}{
		// #11, #12, consequence 1: everything dropped, the token visible and unmasked.
		{"16.1.0-ee", `{"variable_type":"env_var","key":"K","value":"` + runnerTokenValue + `","protected":false,"masked":false,"raw":false,"environment_scope":"*"}`},
		{"16.5.0-ee", `{"variable_type":"env_var","key":"K","value":"` + runnerTokenValue + `","protected":false,"masked":false,"raw":false,"environment_scope":"*","description":"d"}`},
		// Consequence 2: hidden and masked stored, value still returned.
		{"17.3.0-ee", `{"variable_type":"env_var","key":"K","value":"` + runnerTokenValue + `","hidden":true,"protected":false,"masked":true,"raw":false,"environment_scope":"*","description":"d"}`},
		{"17.4.0-ee", `{"variable_type":"env_var","key":"K","value":null,"hidden":true,"protected":false,"masked":true,"raw":false,"environment_scope":"*","description":"d"}`},
	}
	for _, tc := range cases {
		s, seed := NewTest(t, GitLab(tc.version, ""))
		assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/projects/42/variables", seed.MaintainerToken, body), 201, tc.want)
		writes := s.VariableWrites()
		assert.Assert(t, is.Len(writes, 1))
		assert.Check(t, is.Equal(writes[0].Value, runnerTokenValue))
	}
	// Instance variables: description from 16.8, never hidden.
	s, seed := NewTest(t, GitLab("16.7.0-ee", ""))
	got := rawRequest(t, s, http.MethodPost, "/api/v4/admin/ci/variables", seed.AdminToken, body)
	assertResponse(t, got, 201, `{"variable_type":"env_var","key":"K","value":"`+runnerTokenValue+`","protected":false,"masked":false,"raw":false}`)
}

func TestVersionGroupFilterAndScopes(t *testing.T) {
	// #16: before 16.9 a group PUT ignores filter and updates the first variable of the key.
	s, seed := NewTest(t, GitLab("16.8.0-ee", ""))
	path := "/api/v4/groups/10/variables"
	rawRequest(t, s, http.MethodPost, path, seed.OwnerToken, map[string]any{"key": "K", "value": "one", "environment_scope": "staging"})
	rawRequest(t, s, http.MethodPost, path, seed.OwnerToken, map[string]any{"key": "K", "value": "two", "environment_scope": "production"})
	rawRequest(t, s, http.MethodPut, path+"/K?filter[environment_scope]=production", seed.OwnerToken, map[string]any{"value": "new"})
	st, _ := s.Variable("group", 10, "K", "staging")
	assert.Check(t, is.Equal(st.Value, "new"))

	// #17: EE Free drops group environment scopes; CE keeps them.
	free, fseed := NewTest(t, GitLab("17.4.0-ee", TierFree))
	assert.Check(t, is.Contains(rawRequest(t, free, http.MethodPost, path, fseed.OwnerToken, map[string]any{"key": "K", "value": "one", "environment_scope": "staging"}).Body, `"environment_scope":"*"`))
	ce, cseed := NewTest(t, GitLab("17.4.0", ""))
	assert.Check(t, is.Contains(rawRequest(t, ce, http.MethodPost, path, cseed.OwnerToken, map[string]any{"key": "K", "value": "one", "environment_scope": "staging"}).Body, `"environment_scope":"staging"`))
}

func TestVersionTokenExpiryAtCreate(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	params := map[string]any{"runner_type": "project_type", "project_id": 42,
		"token_expires_at": now.Add(48 * time.Hour).Format(time.RFC3339), "token_rotation_deadline": now.Add(24 * time.Hour).Format(time.RFC3339)}
	// #5: dropped on CE, on EE Free and before 18.10.
	for _, opt := range []Option{GitLab("18.10.0", ""), GitLab("18.10.0-ee", TierFree), GitLab("18.9.0-ee", TierPremium)} {
		s, seed := NewTest(t, opt)
		s.SetClock(func() time.Time { return now })
		r := mustCreateRunner(t, s, seed.MaintainerToken, params)
		assert.Check(t, r.TokenExpiresAt == nil, s.Release())
	}
	s, seed := NewTest(t, GitLab("18.10.0-ee", TierPremium))
	s.SetClock(func() time.Time { return now })
	r := mustCreateRunner(t, s, seed.MaintainerToken, params)
	assert.Assert(t, r.TokenExpiresAt != nil)
	assert.Check(t, is.Equal(*r.TokenExpiresAt, "2026-12-05T12:00:00.000Z"))
	bad := map[string]any{"runner_type": "project_type", "project_id": 42, "token_expires_at": now.Add(time.Minute).Format(time.RFC3339)}
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/user/runners", seed.MaintainerToken, bad), 400,
		`{"message":"400 Bad request - token_expires_at must be at least 5 minutes in the future"}`)

	// After the deadline the token cannot be reset.
	s.AdvanceClock(25 * time.Hour)
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/"+itoa(r.ID)+"/reset_authentication_token", seed.MaintainerToken, nil), 403,
		`{"error":"Token rotation deadline has passed"}`)
	// #8: GET /runners/:id has no token_expires_at before 19.0.
	assert.Check(t, !is.Contains(rawRequest(t, s, http.MethodGet, "/api/v4/runners/"+itoa(r.ID), seed.MaintainerToken, nil).Body, "token_expires_at")().Success())
}
