package gitlabfake

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const unauthorized = `{"message":"401 Unauthorized"}`

func TestAuthRejectsMissingAndUnknownTokens(t *testing.T) {
	s, seed := NewTest(t)
	r := mustCreateRunner(t, s, seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": SeedPlatformGroupID})

	for name, token := range map[string]string{
		"none":            "",
		"unknown":         "glpat-doesnotexistdoesnotex",
		"runner token":    r.Token,
		"registration":    "GR1348941abcdef",
		"job token style": "glcbt-64_abcdef",
	} {
		t.Run(name, func(t *testing.T) {
			resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners", token, nil)
			assertResponse(t, resp, http.StatusUnauthorized, unauthorized)
		})
	}
}

func TestAuthTokenSources(t *testing.T) {
	s, seed := NewTest(t)
	get := func(t *testing.T, path string, header http.Header) rawResponse {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, s.URL()+path, nil)
		assert.NilError(t, err)
		// kept as written, not canonicalised
		maps.Copy(req.Header, header)
		resp, err := http.DefaultClient.Do(req)
		assert.NilError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	}

	t.Run("lower-case PRIVATE-TOKEN", func(t *testing.T) {
		resp := get(t, "/api/v4/runners", http.Header{"private-token": {seed.OwnerToken}})
		assertResponse(t, resp, http.StatusOK, "[]")
	})
	t.Run("upper-case PRIVATE-TOKEN", func(t *testing.T) {
		resp := get(t, "/api/v4/runners", http.Header{"PRIVATE-TOKEN": {seed.OwnerToken}})
		assertResponse(t, resp, http.StatusOK, "[]")
	})
	t.Run("bearer", func(t *testing.T) {
		resp := get(t, "/api/v4/runners", http.Header{"Authorization": {"Bearer " + seed.OwnerToken}})
		assertResponse(t, resp, http.StatusOK, "[]")
	})
	t.Run("private_token query", func(t *testing.T) {
		resp := get(t, "/api/v4/runners?private_token="+seed.OwnerToken, nil)
		assertResponse(t, resp, http.StatusOK, "[]")
	})
	t.Run("job token header", func(t *testing.T) {
		resp := get(t, "/api/v4/projects/42/variables", http.Header{"JOB-TOKEN": {"glcbt-64_whatever"}})
		assertResponse(t, resp, http.StatusUnauthorized, unauthorized)
	})
	t.Run("job token bearer", func(t *testing.T) {
		resp := get(t, "/api/v4/projects/42/variables", http.Header{"Authorization": {"Bearer glcbt-64_whatever"}})
		assertResponse(t, resp, http.StatusUnauthorized, unauthorized)
	})
	t.Run("job token next to a PAT", func(t *testing.T) {
		resp := get(t, "/api/v4/projects/42/variables", http.Header{"Job-Token": {"glcbt-x"}, "Private-Token": {seed.OwnerToken}})
		assertResponse(t, resp, http.StatusUnauthorized, unauthorized)
	})
}

func TestAuthExpiredAndRevokedTokens(t *testing.T) {
	s, seed := NewTest(t)

	resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.ExpiredToken, nil)
	assertResponse(t, resp, http.StatusUnauthorized,
		`{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`)
	assert.Equal(t, resp.Header.Get("WWW-Authenticate"),
		`Bearer realm="The API", error="invalid_token", error_description="Token is expired. You can either do re-authorization or token refresh."`)

	resp = rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.RevokedToken, nil)
	assertResponse(t, resp, http.StatusUnauthorized,
		`{"error":"invalid_token","error_description":"Token was revoked. You have to re-authorize from the user."}`)
	assert.Check(t, is.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`))

	_, _, err := client(t, s, seed.ExpiredToken).Runners.ListRunners(nil)
	assert.Check(t, gitlab.HasStatusCode(err, http.StatusUnauthorized))
}

func insufficientScope(scope string) string {
	return `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"` + scope + `"}`
}

func TestAuthScopes(t *testing.T) {
	s, seed := NewTest(t)
	manage := s.AddToken("owner", []string{"manage_runner"})
	r := mustCreateRunner(t, s, seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": seed.PlatformGroupID})
	runnerPath := "/api/v4/runners/" + itoa(r.ID)

	t.Run("read_api can read", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodGet, "/api/v4/projects/42/variables", seed.ReadAPIToken, nil)
		assertResponse(t, resp, http.StatusOK, "[]")
	})
	t.Run("read_api cannot write variables", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodPost, "/api/v4/projects/42/variables", seed.ReadAPIToken, map[string]any{"key": "K", "value": "v"})
		assertResponse(t, resp, http.StatusForbidden, insufficientScope("api"))
		assert.Check(t, is.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`))
		assert.Equal(t, len(s.Variables()), 0)
	})
	t.Run("read_api cannot create runners", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodPost, "/api/v4/user/runners", seed.ReadAPIToken, map[string]any{"runner_type": "group_type", "group_id": 10})
		assertResponse(t, resp, http.StatusForbidden, insufficientScope("api create_runner"))
	})
	t.Run("create_runner can create runners", func(t *testing.T) {
		u, _, err := client(t, s, seed.CreateRunnerOnlyToken).Users.CreateUserRunner(&gitlab.CreateUserRunnerOptions{
			RunnerType: new("group_type"), GroupID: new(seed.PlatformGroupID),
		})
		assert.NilError(t, err)
		assert.Check(t, u.ID > 0)
	})
	t.Run("create_runner cannot list runners", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.CreateRunnerOnlyToken, nil)
		assertResponse(t, resp, http.StatusForbidden, insufficientScope("api read_api"))
	})
	t.Run("create_runner cannot read variables", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodGet, "/api/v4/projects/42/variables", seed.CreateRunnerOnlyToken, nil)
		assertResponse(t, resp, http.StatusForbidden, insufficientScope("api read_api"))
	})
	t.Run("manage_runner on runner routes", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodGet, runnerPath, manage, nil)
		assert.Equal(t, resp.Status, http.StatusOK, resp.Body)
		resp = rawRequest(t, s, http.MethodPost, runnerPath+"/reset_authentication_token", manage, nil)
		assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)
		resp = rawRequest(t, s, http.MethodGet, runnerPath+"/managers", manage, nil)
		assert.Equal(t, resp.Status, http.StatusOK, resp.Body)
	})
	t.Run("manage_runner cannot list", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners", manage, nil)
		assertResponse(t, resp, http.StatusForbidden, insufficientScope("api read_api"))
	})
	t.Run("manage_runner cannot create", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodPost, "/api/v4/user/runners", manage, map[string]any{"runner_type": "instance_type"})
		assertResponse(t, resp, http.StatusForbidden, insufficientScope("api create_runner"))
	})
	t.Run("read_api GET on runner route lists both", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodPut, runnerPath, seed.ReadAPIToken, map[string]any{"description": "x"})
		assertResponse(t, resp, http.StatusForbidden, insufficientScope("api manage_runner"))
	})
}

func TestUnknownRoute(t *testing.T) {
	s, seed := NewTest(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/v4/nope"},
		{http.MethodPatch, "/api/v4/runners"},    // known path, unknown method
		{http.MethodPost, "/api/v4/runners/all"}, // idem
		{http.MethodGet, "/api/v4/projects/42/variables/K/extra"},
	} {
		resp := rawRequest(t, s, tc.method, tc.path, seed.OwnerToken, nil)
		assertResponse(t, resp, http.StatusNotFound, `{"error":"404 Not Found"}`)
	}

	_, _, err := client(t, s, seed.OwnerToken).Runners.ListRunnerJobs(1000, nil)
	assert.Check(t, errors.Is(err, gitlab.ErrNotFound))
}
