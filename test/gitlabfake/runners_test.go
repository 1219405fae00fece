package gitlabfake

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestGetRunnerDetails(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	r := projectRunner(t, s, seed, map[string]any{"description": "d", "maintenance_note": "note", "tag_list": []string{"a"}, "maximum_timeout": 600})

	resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners/1000", seed.MaintainerToken, nil)
	assertResponse(t, resp, http.StatusOK, `{"id":1000,"description":"d","ip_address":null,"active":true,"paused":false,"is_shared":false,`+
		`"runner_type":"project_type","name":null,"online":null,"status":"never_contacted","tag_list":["a"],"run_untagged":true,"locked":false,`+
		`"maximum_timeout":600,"access_level":"not_protected","version":null,"revision":null,"platform":null,"architecture":null,`+
		`"contacted_at":null,"maintenance_note":"note","projects":[{"id":42,"description":null,"name":"deploy","name_with_namespace":"platform / deploy",`+
		`"path":"deploy","path_with_namespace":"platform/deploy","web_url":"`+s.URL()+`/platform/deploy"}],"groups":[],"token_expires_at":null}`)
	assert.Check(t, !strings.Contains(resp.Body, r.Token))

	d, _, err := client(t, s, seed.OwnerToken).Runners.GetRunnerDetails(r.ID)
	assert.NilError(t, err)
	assert.Equal(t, d.Token, "")
	assert.Equal(t, d.MaintenanceNote, "note") // owner of platform inherits Owner on the project
	assert.Equal(t, d.Projects[0].PathWithNamespace, "platform/deploy")
}

func TestGetRunnerPermissions(t *testing.T) {
	s, seed := NewTest(t)
	inst := mustCreateRunner(t, s, seed.AdminToken, map[string]any{"runner_type": "instance_type", "maintenance_note": "secret"})
	prj := projectRunner(t, s, seed, nil)
	grp := mustCreateRunner(t, s, seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 10})

	// Instance runners are readable by anyone, without the maintenance note.
	resp := rawRequest(t, s, http.MethodGet, "/api/v4/runners/"+itoa(inst.ID), seed.DeveloperToken, nil)
	assert.Equal(t, resp.Status, http.StatusOK)
	assert.Check(t, is.Contains(resp.Body, `"maintenance_note":null`))
	resp = rawRequest(t, s, http.MethodGet, "/api/v4/runners/"+itoa(inst.ID), seed.AdminToken, nil)
	assert.Check(t, is.Contains(resp.Body, `"maintenance_note":"secret"`))

	noAccess := `{"message":"403 Forbidden - No access granted"}`
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners/"+itoa(prj.ID), seed.DeveloperToken, nil), 403, noAccess)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners/"+itoa(grp.ID), seed.MaintainerToken, nil), 403, noAccess)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners/99999", seed.OwnerToken, nil), 404, `{"message":"404 Runner Not Found"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners/abc", seed.OwnerToken, nil), 400, `{"error":"id is invalid"}`)

	_, _, err := client(t, s, seed.OwnerToken).Runners.GetRunnerDetails(99999)
	assert.Check(t, errors.Is(err, gitlab.ErrNotFound))
}

func TestUpdateRunner(t *testing.T) {
	s, seed := NewTest(t)
	r := projectRunner(t, s, seed, nil)
	c := client(t, s, seed.MaintainerToken)

	d, _, err := c.Runners.UpdateRunnerDetails(r.ID, &gitlab.UpdateRunnerDetailsOptions{
		Description: new("new"),
		TagList:     &[]string{"x", "y"},
		Paused:      new(true),
	})
	assert.NilError(t, err)
	assert.Equal(t, d.Description, "new")
	assert.DeepEqual(t, d.TagList, []string{"x", "y"})
	assert.Check(t, d.Paused)
	got, _ := s.Runner(r.ID)
	assert.Equal(t, got.Description, "new")
	assert.Equal(t, got.Token, r.Token) // an update never touches the token

	path := "/api/v4/runners/" + itoa(r.ID)
	for _, tc := range []struct {
		name   string
		token  string
		params any
		status int
		body   string
	}{
		{"no params", seed.MaintainerToken, map[string]any{}, 400,
			`{"error":"description, active, paused, tag_list, run_untagged, locked, access_level, maximum_timeout, maintenance_note are missing, at least one parameter must be provided"}`},
		{"active and paused", seed.MaintainerToken, map[string]any{"active": true, "paused": false}, 400,
			`{"error":"active, paused are mutually exclusive"}`},
		{"short timeout", seed.MaintainerToken, map[string]any{"maximum_timeout": 100}, 400,
			`{"message":{"maximum_timeout":["needs to be at least 10 minutes"]}}`},
		{"untagged without tags", seed.MaintainerToken, map[string]any{"run_untagged": false, "tag_list": []string{}}, 400,
			`{"message":{"tags_list":["can not be empty when runner is not allowed to pick untagged jobs"]}}`},
		{"bad access level", seed.MaintainerToken, map[string]any{"access_level": "x"}, 400,
			`{"error":"access_level does not have a valid value"}`},
		{"developer", seed.DeveloperToken, map[string]any{"description": "x"}, 403,
			`{"message":"403 Forbidden - No access granted"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertResponse(t, rawRequest(t, s, http.MethodPut, path, tc.token, tc.params), tc.status, tc.body)
		})
	}
	assertResponse(t, rawRequest(t, s, http.MethodPut, "/api/v4/runners/99999", seed.MaintainerToken, map[string]any{"description": "x"}),
		404, `{"message":"404 Runner Not Found"}`)

	got, _ = s.Runner(r.ID)
	assert.Equal(t, got.Description, "new", "failed updates must not change anything")

	// active=true is the deprecated inverse of paused.
	_, _, err = c.Runners.UpdateRunnerDetails(r.ID, &gitlab.UpdateRunnerDetailsOptions{Active: new(true)})
	assert.NilError(t, err)
	got, _ = s.Runner(r.ID)
	assert.Check(t, !got.Paused)
}

func TestDeleteRunner(t *testing.T) {
	s, seed := NewTest(t)
	r := projectRunner(t, s, seed, nil)
	path := "/api/v4/runners/" + itoa(r.ID)

	assertResponse(t, rawRequest(t, s, http.MethodDelete, path, seed.DeveloperToken, nil), 403, `{"message":"403 Forbidden - No access granted"}`)

	// A runner shared by several projects can only be deleted by an admin.
	s.mu.Lock()
	s.runnerByID(r.ID).projectIDs = []int64{42, 43}
	s.mu.Unlock()
	assertResponse(t, rawRequest(t, s, http.MethodDelete, path, seed.MaintainerToken, nil), 403,
		`{"message":"403 Forbidden - Runner associated with more than one project"}`)
	s.mu.Lock()
	s.runnerByID(r.ID).projectIDs = []int64{42}
	s.mu.Unlock()

	resp := rawRequest(t, s, http.MethodDelete, path, seed.MaintainerToken, nil)
	assertResponse(t, resp, http.StatusNoContent, "")
	_, ok := s.Runner(r.ID)
	assert.Check(t, !ok)
	assertResponse(t, rawRequest(t, s, http.MethodDelete, path, seed.MaintainerToken, nil), 404, `{"message":"404 Runner Not Found"}`)

	r2 := projectRunner(t, s, seed, nil)
	_, err := client(t, s, seed.AdminToken).Runners.RemoveRunner(r2.ID)
	assert.NilError(t, err)
	assert.Equal(t, len(s.Runners()), 0)
}

func TestDeleteRunnerIfUnmodifiedSince(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	r := projectRunner(t, s, seed, nil)

	req, _ := http.NewRequest(http.MethodDelete, s.URL()+"/api/v4/runners/"+itoa(r.ID), nil)
	req.Header.Set("Private-Token", seed.MaintainerToken)
	req.Header.Set("If-Unmodified-Since", now.Add(-time.Hour).Format(http.TimeFormat))
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusPreconditionFailed)
	_, ok := s.Runner(r.ID)
	assert.Check(t, ok)
}

func TestResetRunnerTokenByID(t *testing.T) {
	s, seed := NewTest(t)
	r := projectRunner(t, s, seed, nil)

	tok, resp, err := client(t, s, seed.MaintainerToken).Runners.ResetRunnerAuthenticationToken(r.ID)
	assert.NilError(t, err)
	assert.Equal(t, resp.StatusCode, http.StatusCreated)
	assert.Check(t, is.Regexp(runnerTokenRe, *tok.Token))
	assert.Check(t, *tok.Token != r.Token)
	assert.Check(t, tok.TokenExpiresAt == nil)

	// The old token is dead at once; the new one works.
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": r.Token}), 403, `{"message":"403 Forbidden"}`)
	v := rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": *tok.Token})
	assert.Equal(t, v.Status, http.StatusOK)

	raw := rawRequest(t, s, http.MethodPost, "/api/v4/runners/"+itoa(r.ID)+"/reset_authentication_token", seed.MaintainerToken, nil)
	assert.Equal(t, raw.Status, http.StatusCreated)
	got, _ := s.Runner(r.ID)
	assert.Equal(t, raw.Body, `{"token":"`+got.Token+`","token_expires_at":null}`)

	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/"+itoa(r.ID)+"/reset_authentication_token", seed.DeveloperToken, nil),
		403, `{"message":"403 Forbidden - No access granted"}`)
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/99999/reset_authentication_token", seed.MaintainerToken, nil),
		404, `{"message":"404 Runner Not Found"}`)

	// Group runners need the group Owner.
	g := mustCreateRunner(t, s, seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 11})
	s.SetRole("maint", "platform/runners", Maintainer)
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/"+itoa(g.ID)+"/reset_authentication_token", seed.MaintainerToken, nil),
		403, `{"message":"403 Forbidden - No access granted"}`)
	_, _, err = client(t, s, seed.OwnerToken).Runners.ResetRunnerAuthenticationToken(g.ID)
	assert.NilError(t, err)
}

func TestResetRunnerTokenRecomputesExpiry(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	r := projectRunner(t, s, seed, nil)
	assert.Check(t, r.TokenExpiresAt == nil)

	s.SetRunnerTokenExpiration(24 * time.Hour)
	tok, _, err := client(t, s, seed.MaintainerToken).Runners.ResetRunnerAuthenticationToken(r.ID)
	assert.NilError(t, err)
	assert.Equal(t, tok.TokenExpiresAt.UTC(), now.Add(24*time.Hour))
}

func TestListRunnersPagination(t *testing.T) {
	s, seed := NewTest(t)
	for range 5 {
		projectRunner(t, s, seed, nil)
	}
	c := client(t, s, seed.MaintainerToken)

	list, resp, err := c.Runners.ListProjectRunners(seed.DeployProjectID, &gitlab.ListProjectRunnersOptions{ListOptions: gitlab.ListOptions{Page: 2, PerPage: 2}})
	assert.NilError(t, err)
	assert.Equal(t, len(list), 2)
	assert.Equal(t, list[0].ID, int64(1002))
	assert.Equal(t, resp.TotalItems, int64(5))
	assert.Equal(t, resp.TotalPages, int64(3))
	assert.Equal(t, resp.CurrentPage, int64(2))
	assert.Equal(t, resp.NextPage, int64(3))
	assert.Equal(t, resp.PreviousPage, int64(1))

	base := s.URL() + "/api/v4/projects/42/runners"
	raw := rawRequest(t, s, http.MethodGet, "/api/v4/projects/42/runners?page=3&per_page=2", seed.MaintainerToken, nil)
	assert.Equal(t, raw.Header.Get("X-Page"), "3")
	assert.Equal(t, raw.Header.Get("X-Per-Page"), "2")
	assert.Equal(t, raw.Header.Get("X-Next-Page"), "")
	assert.Equal(t, raw.Header.Get("X-Prev-Page"), "2")
	assert.Equal(t, raw.Header.Get("X-Total"), "5")
	assert.Equal(t, raw.Header.Get("X-Total-Pages"), "3")
	assert.Equal(t, raw.Header.Get("Link"),
		`<`+base+`?page=2&per_page=2>; rel="prev", <`+base+`?page=1&per_page=2>; rel="first", <`+base+`?page=3&per_page=2>; rel="last"`)

	// per_page is clamped to 100; the default is 20.
	raw = rawRequest(t, s, http.MethodGet, "/api/v4/projects/42/runners?per_page=500", seed.MaintainerToken, nil)
	assert.Equal(t, raw.Header.Get("X-Per-Page"), "100")
	raw = rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.MaintainerToken, nil)
	assert.Equal(t, raw.Header.Get("X-Per-Page"), "20")
	assert.Equal(t, raw.Header.Get("X-Total-Pages"), "1")
	assert.Equal(t, raw.Header.Get("Link"), `<`+s.URL()+`/api/v4/runners?page=1&per_page=20>; rel="first", <`+s.URL()+`/api/v4/runners?page=1&per_page=20>; rel="last"`)
}

func TestListRunnersFilters(t *testing.T) {
	s, seed := NewTest(t)
	inst := mustCreateRunner(t, s, seed.AdminToken, map[string]any{"runner_type": "instance_type", "tag_list": []string{"a", "b"}})
	grp := mustCreateRunner(t, s, seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 10, "tag_list": []string{"a"}})
	sub := mustCreateRunner(t, s, seed.OwnerToken, map[string]any{"runner_type": "group_type", "group_id": 11, "paused": true})
	prj := projectRunner(t, s, seed, map[string]any{"tag_list": []string{"a", "b", "c"}})
	other := mustCreateRunner(t, s, seed.AdminToken, map[string]any{"runner_type": "project_type", "project_id": 50})
	c := client(t, s, seed.OwnerToken)

	ids := func(rs []*gitlab.Runner) []int64 {
		out := []int64{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}

	all, _, err := client(t, s, seed.AdminToken).Runners.ListAllRunners(nil)
	assert.NilError(t, err)
	assert.DeepEqual(t, ids(all), []int64{inst.ID, grp.ID, sub.ID, prj.ID, other.ID})

	mine, _, err := c.Runners.ListRunners(nil)
	assert.NilError(t, err)
	assert.DeepEqual(t, ids(mine), []int64{grp.ID, sub.ID, prj.ID})

	mine, _, err = c.Runners.ListRunners(&gitlab.ListRunnersOptions{TagList: &[]string{"a", "b"}})
	assert.NilError(t, err)
	assert.DeepEqual(t, ids(mine), []int64{prj.ID}) // tag_list matches runners with all tags

	mine, _, err = c.Runners.ListRunners(&gitlab.ListRunnersOptions{Type: new("group_type"), Paused: new(true)})
	assert.NilError(t, err)
	assert.DeepEqual(t, ids(mine), []int64{sub.ID})

	mine, _, err = c.Runners.ListRunners(&gitlab.ListRunnersOptions{Status: new("never_contacted")})
	assert.NilError(t, err)
	assert.Equal(t, len(mine), 3)

	groupList, _, err := c.Runners.ListGroupsRunners(seed.RunnersSubgroupID, nil)
	assert.NilError(t, err)
	assert.DeepEqual(t, ids(groupList), []int64{inst.ID, grp.ID, sub.ID}) // group, ancestors and instance runners

	projectList, _, err := c.Runners.ListProjectRunners("platform/deploy", nil)
	assert.NilError(t, err)
	assert.DeepEqual(t, ids(projectList), []int64{inst.ID, grp.ID, prj.ID})

	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners/all", seed.OwnerToken, nil), 403, `{"message":"403 Forbidden"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners?type=shared", seed.OwnerToken, nil), 400, `{"error":"type does not have a valid value"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners?status=busy", seed.OwnerToken, nil), 400, `{"error":"status does not have a valid value"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners?scope=instance_type", seed.OwnerToken, nil), 400, `{"message":"Scope contains invalid value"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners?scope=nope", seed.OwnerToken, nil), 400, `{"error":"scope does not have a valid value"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/projects/42/runners", seed.DeveloperToken, nil), 403, `{"message":"403 Forbidden"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/projects/50/runners", seed.OwnerToken, nil), 404, `{"message":"404 Project Not Found"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/groups/20/runners", seed.OwnerToken, nil), 404, `{"message":"404 Group Not Found"}`)

	raw := rawRequest(t, s, http.MethodGet, "/api/v4/runners?type=group_type&paused=true", seed.OwnerToken, nil)
	assertResponse(t, raw, http.StatusOK, `[{"id":`+itoa(sub.ID)+`,"description":null,"ip_address":null,"active":false,"paused":true,"is_shared":false,"runner_type":"group_type","name":null,"online":null,"status":"never_contacted"}]`)
}

func TestRunnerStatusAndManagers(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	r := projectRunner(t, s, seed, nil)
	c := client(t, s, seed.MaintainerToken)

	s.ContactRunner(r.ID, "s_0123456789ab")
	d, _, err := c.Runners.GetRunnerDetails(r.ID)
	assert.NilError(t, err)
	assert.Equal(t, d.Status, "online")
	assert.Check(t, d.Online)
	assert.Equal(t, d.ContactedAt.UTC(), now)

	managers, _, err := c.Runners.ListRunnerManagers(r.ID)
	assert.NilError(t, err)
	assert.Equal(t, len(managers), 1)
	assert.Equal(t, managers[0].SystemID, "s_0123456789ab")
	assert.Equal(t, managers[0].Status, "online")

	s.AdvanceClock(3 * time.Hour)
	d, _, _ = c.Runners.GetRunnerDetails(r.ID)
	assert.Equal(t, d.Status, "offline")
	list, _, _ := c.Runners.ListRunners(&gitlab.ListRunnersOptions{Status: new("offline")})
	assert.Equal(t, len(list), 1)

	s.AdvanceClock(8 * 24 * time.Hour)
	d, _, _ = c.Runners.GetRunnerDetails(r.ID)
	assert.Equal(t, d.Status, "stale")

	s.ContactRunner(r.ID, "")
	managers, _, _ = c.Runners.ListRunnerManagers(r.ID)
	assert.Equal(t, len(managers), 2)
	assert.Equal(t, managers[1].SystemID, "<legacy>")

	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners/"+itoa(r.ID)+"/managers", seed.DeveloperToken, nil),
		403, `{"message":"403 Forbidden - No access granted"}`)
}
