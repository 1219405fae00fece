package gitlabfake

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

var runnerTokenRe = regexp.MustCompile(`^glrt-t[123]_[A-Za-z0-9_-]{20}$`)

func TestCreateUserRunnerWithClient(t *testing.T) {
	s, seed := NewTest(t)
	c := client(t, s, seed.MaintainerToken)

	created, resp, err := c.Users.CreateUserRunner(&gitlab.CreateUserRunnerOptions{
		RunnerType:      new("project_type"),
		ProjectID:       new(seed.DeployProjectID),
		Description:     new("deploy runner"),
		TagList:         &[]string{"docker", "linux"},
		RunUntagged:     new(false),
		Locked:          new(true),
		AccessLevel:     new("ref_protected"),
		MaximumTimeout:  new(int64(3600)),
		MaintenanceNote: new("owned by platform"),
		Paused:          new(true),
	})
	assert.NilError(t, err)
	assert.Equal(t, resp.StatusCode, http.StatusCreated)
	assert.Equal(t, created.ID, int64(1000))
	assert.Check(t, is.Regexp(runnerTokenRe, created.Token))
	assert.Check(t, strings.HasPrefix(created.Token, "glrt-t3_"))
	assert.Check(t, created.TokenExpiresAt == nil)

	got, ok := s.Runner(created.ID)
	assert.Assert(t, ok)
	assert.Check(t, !got.CreatedAt.IsZero())
	got.CreatedAt = time.Time{}
	assert.DeepEqual(t, got, Runner{
		ID:              1000,
		Type:            "project_type",
		ProjectIDs:      []int64{seed.DeployProjectID},
		Description:     "deploy runner",
		MaintenanceNote: "owned by platform",
		AccessLevel:     "ref_protected",
		TagList:         []string{"docker", "linux"},
		Locked:          true,
		Paused:          true,
		MaximumTimeout:  3600,
		Token:           created.Token,
		CreatorID:       3,
		Managers:        []Manager{},
	})
	assert.Equal(t, s.Writes(), 1)
}

func TestCreateUserRunnerDefaultsAndPrefixes(t *testing.T) {
	s, seed := NewTest(t)

	inst := mustCreateRunner(t, s, seed.AdminToken, map[string]any{"runner_type": "instance_type"})
	grp := mustCreateRunner(t, s, seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": seed.RunnersSubgroupID})
	prj := mustCreateRunner(t, s, seed.OwnerToken, map[string]any{"runner_type": "project_type", "project_id": seed.FleetProjectID})
	assert.Check(t, strings.HasPrefix(inst.Token, "glrt-t1_"))
	assert.Check(t, strings.HasPrefix(grp.Token, "glrt-t2_"))
	assert.Check(t, strings.HasPrefix(prj.Token, "glrt-t3_"))
	assert.Equal(t, grp.ID, inst.ID+1)

	r, _ := s.Runner(inst.ID)
	assert.Check(t, r.RunUntagged)
	assert.Check(t, !r.Locked)
	assert.Check(t, !r.Paused)
	assert.Equal(t, r.AccessLevel, "not_protected")
	assert.DeepEqual(t, r.TagList, []string{})
	assert.Equal(t, r.MaximumTimeout, int64(0))

	r, _ = s.Runner(grp.ID)
	assert.Equal(t, r.GroupID, seed.RunnersSubgroupID)
	assert.Equal(t, r.Type, "group_type")
}

func TestCreateUserRunnerParamEncodings(t *testing.T) {
	s, seed := NewTest(t)

	t.Run("form body with tag_list[] and string booleans", func(t *testing.T) {
		form := url.Values{
			"runner_type": {"project_type"}, "project_id": {"42"},
			"tag_list[]": {"a", "b"}, "run_untagged": {"false"}, "paused": {"true"},
		}
		resp := rawRequest(t, s, http.MethodPost, "/api/v4/user/runners", seed.MaintainerToken, form)
		assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)
		r, _ := s.Runner(decode[createdRunner](t, resp.Body).ID)
		assert.DeepEqual(t, r.TagList, []string{"a", "b"})
		assert.Check(t, !r.RunUntagged)
		assert.Check(t, r.Paused)
	})
	t.Run("query string with comma list", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodPost, "/api/v4/user/runners?runner_type=project_type&project_id=42&tag_list=x,%20y,,x", seed.MaintainerToken, nil)
		assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)
		r, _ := s.Runner(decode[createdRunner](t, resp.Body).ID)
		assert.DeepEqual(t, r.TagList, []string{"x", "y"})
	})
	t.Run("JSON with string booleans and numbers", func(t *testing.T) {
		resp := rawRequest(t, s, http.MethodPost, "/api/v4/user/runners", seed.MaintainerToken,
			`{"runner_type":"project_type","project_id":"42","locked":"true","maximum_timeout":"600","tag_list":"k8s"}`)
		assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)
		r, _ := s.Runner(decode[createdRunner](t, resp.Body).ID)
		assert.Check(t, r.Locked)
		assert.Equal(t, r.MaximumTimeout, int64(600))
		assert.DeepEqual(t, r.TagList, []string{"k8s"})
	})
}

func TestCreateUserRunnerErrors(t *testing.T) {
	s, seed := NewTest(t)
	long := strings.Repeat("x", 1025)
	manyTags := make([]string, 51)
	for i := range manyTags {
		manyTags[i] = "t" + itoa(int64(i))
	}

	for _, tc := range []struct {
		name   string
		token  string
		params map[string]any
		status int
		body   string
	}{
		{"missing runner_type", seed.OwnerToken, map[string]any{}, 400,
			`{"error":"runner_type is missing, runner_type does not have a valid value"}`},
		{"bad runner_type", seed.OwnerToken, map[string]any{"runner_type": "shared"}, 400,
			`{"error":"runner_type does not have a valid value"}`},
		{"group without group_id", seed.OwnerToken, map[string]any{"runner_type": "group_type"}, 400,
			`{"error":"group_id is missing"}`},
		{"project without project_id", seed.OwnerToken, map[string]any{"runner_type": "project_type", "group_id": 10}, 400,
			`{"error":"project_id is missing"}`},
		{"non-integer group_id", seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": "platform"}, 400,
			`{"error":"group_id is invalid"}`},
		{"bad access_level", seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 10, "access_level": "protected"}, 400,
			`{"error":"access_level does not have a valid value"}`},
		{"bad boolean", seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 10, "paused": "maybe"}, 400,
			`{"error":"paused is invalid"}`},
		{"unknown group", seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 999}, 400,
			`{"message":"400 Bad request - Missing/invalid group"}`},
		{"unknown project", seed.OwnerToken, map[string]any{"runner_type": "project_type", "project_id": 999}, 400,
			`{"message":"400 Bad request - Missing/invalid project"}`},
		{"maintainer cannot create group runner", seed.MaintainerToken, map[string]any{"runner_type": "group_type", "group_id": 10}, 403,
			`{"message":"403 Forbidden - Insufficient permissions"}`},
		{"developer cannot create project runner", seed.DeveloperToken, map[string]any{"runner_type": "project_type", "project_id": 42}, 403,
			`{"message":"403 Forbidden - Insufficient permissions"}`},
		{"owner cannot create instance runner", seed.OwnerToken, map[string]any{"runner_type": "instance_type"}, 403,
			`{"message":"403 Forbidden - Insufficient permissions"}`},
		{"inaccessible existing project is 403 not 404", seed.OwnerToken, map[string]any{"runner_type": "project_type", "project_id": seed.OtherProjectID}, 403,
			`{"message":"403 Forbidden - Insufficient permissions"}`},
		{"untagged false without tags and short timeout", seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 10, "run_untagged": false, "maximum_timeout": 60}, 400,
			`{"message":"400 Bad request - Tags list can not be empty when runner is not allowed to pick untagged jobs and Maximum timeout needs to be at least 10 minutes"}`},
		{"too many tags", seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 10, "tag_list": manyTags}, 400,
			`{"message":"400 Bad request - Tags list Too many tags specified. Please limit the number of tags to 50"}`},
		{"three errors use Rails to_sentence", seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 10, "run_untagged": false, "maximum_timeout": 0, "description": long}, 400,
			`{"message":"400 Bad request - Tags list can not be empty when runner is not allowed to pick untagged jobs, Maximum timeout needs to be at least 10 minutes, and Description is too long (maximum is 1024 characters)"}`},
		{"long maintenance note", seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 10, "maintenance_note": long}, 400,
			`{"message":"400 Bad request - Maintenance note is too long (maximum is 1024 characters)"}`},
		{"no token", "", map[string]any{"runner_type": "instance_type"}, 401, unauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := rawRequest(t, s, http.MethodPost, "/api/v4/user/runners", tc.token, tc.params)
			assertResponse(t, resp, tc.status, tc.body)
		})
	}
	assert.Equal(t, len(s.Runners()), 0)
	assert.Equal(t, s.Writes(), 0)
}

func TestCreateUserRunnerErrorWithClient(t *testing.T) {
	s, seed := NewTest(t)
	_, resp, err := client(t, s, seed.DeveloperToken).Users.CreateUserRunner(&gitlab.CreateUserRunnerOptions{
		RunnerType: new("project_type"), ProjectID: new(seed.DeployProjectID),
	})
	assert.Check(t, gitlab.HasStatusCode(err, http.StatusForbidden))
	assert.Equal(t, resp.StatusCode, http.StatusForbidden)
	assert.ErrorContains(t, err, "403 Forbidden - Insufficient permissions")
}

func TestCreateUserRunnerTokenExpiration(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	s.SetRunnerTokenExpiration(72 * time.Hour)

	created, _, err := client(t, s, seed.MaintainerToken).Users.CreateUserRunner(&gitlab.CreateUserRunnerOptions{
		RunnerType: new("project_type"), ProjectID: new(seed.DeployProjectID),
	})
	assert.NilError(t, err)
	assert.Assert(t, created.TokenExpiresAt != nil)
	assert.Equal(t, created.TokenExpiresAt.UTC(), now.Add(72*time.Hour))

	r, _ := s.Runner(created.ID)
	assert.Equal(t, *r.TokenExpiresAt, now.Add(72*time.Hour))

	resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners/"+itoa(created.ID), seed.MaintainerToken, nil)
	assert.Check(t, is.Contains(resp.Body, `"token_expires_at":"2026-03-04T12:00:00.000Z"`))
}
