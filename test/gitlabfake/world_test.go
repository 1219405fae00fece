package gitlabfake

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestSeed(t *testing.T) {
	s, seed := NewTest(t)
	assert.Equal(t, seed.URL, s.URL())
	assert.Equal(t, seed.PlatformGroupID, int64(10))
	assert.Equal(t, seed.RunnersSubgroupID, int64(11))
	assert.Equal(t, seed.OtherGroupID, int64(20))
	assert.Equal(t, seed.DeployProjectID, int64(42))
	assert.Equal(t, seed.FleetProjectID, int64(43))
	assert.Equal(t, seed.OtherProjectID, int64(50))
	assert.Check(t, is.Regexp(`^glpat-[A-Za-z0-9_-]{20}$`, seed.OwnerToken))
	assert.DeepEqual(t, s.Seed(), seed) // idempotent

	// Tokens are deterministic for a fresh server, which keeps golden files stable.
	assert.Equal(t, New().Seed().AdminToken, seed.AdminToken)

	assert.Equal(t, s.AddGroup("platform/new"), int64(100))
	assert.Equal(t, s.AddProject("platform/new/app"), int64(200))
}

func TestGetProjectAndGroup(t *testing.T) {
	s, seed := NewTest(t)
	c := client(t, s, seed.MaintainerToken)

	p, _, err := c.Projects.GetProject("platform/deploy", nil)
	assert.NilError(t, err)
	assert.Equal(t, p.ID, int64(42))
	assert.Equal(t, p.PathWithNamespace, "platform/deploy")
	assert.Equal(t, p.WebURL, s.URL()+"/platform/deploy")

	// maint sees group platform through its project (GroupPolicy), not other.
	g, _, err := c.Groups.GetGroup("platform", nil)
	assert.NilError(t, err)
	assert.Equal(t, g.ID, int64(10))
	assert.Equal(t, g.FullPath, "platform")
	_, _, err = c.Groups.GetGroup(seed.OtherGroupID, nil)
	assert.Check(t, errors.Is(err, gitlab.ErrNotFound))

	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/projects/other%2Fapp", seed.OwnerToken, nil), 404, `{"message":"404 Project Not Found"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/projects/9999", seed.OwnerToken, nil), 404, `{"message":"404 Project Not Found"}`)
	assertResponse(t, rawRequest(t, s, http.MethodGet, "/api/v4/groups/other", seed.OwnerToken, nil), 404, `{"message":"404 Group Not Found"}`)

	resp := rawRequest(t, s, http.MethodGet, "/api/v4/groups/platform%2Frunners", seed.OwnerToken, nil)
	assertResponse(t, resp, 200, `{"id":11,"web_url":"`+s.URL()+`/groups/platform/runners","name":"runners","path":"runners","description":"",`+
		`"visibility":"private","full_name":"platform / runners","full_path":"platform/runners","parent_id":10,"runners_token":null}`)

	// Admins see everything; roles are inherited down the tree.
	_, _, err = client(t, s, seed.AdminToken).Projects.GetProject(seed.OtherProjectID, nil)
	assert.NilError(t, err)
	_, _, err = client(t, s, seed.OwnerToken).Projects.GetProject("platform/runners/fleet", nil)
	assert.NilError(t, err)
}

func TestRoles(t *testing.T) {
	s, _ := NewTest(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, maint := s.userByName("owner"), s.userByName("maint")
	fleet, deploy := s.projectByPath("platform/runners/fleet"), s.projectByPath("platform/deploy")
	assert.Equal(t, s.projectRole(owner, fleet), Owner)
	assert.Equal(t, s.projectRole(maint, deploy), Maintainer)
	assert.Equal(t, s.projectRole(maint, fleet), Role(0))
	s.members[memberKey{"group", 11, maint.id}] = Developer
	assert.Equal(t, s.projectRole(maint, fleet), Developer)
	s.members[memberKey{"project", fleet.id, maint.id}] = Maintainer
	assert.Equal(t, s.projectRole(maint, fleet), Maintainer, "highest wins")
}

func TestParamsMerging(t *testing.T) {
	q, _ := url.ParseQuery("tag_list[]=a&tag_list[]=b&filter[environment_scope]=prod&x=1&x=2")
	p := params{}
	mergeValues(p, q)
	assert.DeepEqual(t, p["tag_list"], []any{"a", "b"})
	assert.DeepEqual(t, p["filter"], map[string]any{"environment_scope": "prod"})
	assert.Equal(t, p["x"], "2")

	v := &validator{p: params{"a": "x, y ,x,", "b": []any{"m,n", "o"}, "c": map[string]any{}}}
	tags, _ := v.tagList("a")
	assert.DeepEqual(t, tags, []string{"x", "y"})
	tags, _ = v.tagList("b")
	assert.DeepEqual(t, tags, []string{"m", "n", "o"})
	_, _ = v.tagList("c")
	assert.Equal(t, v.message(), "c is invalid")
}

func TestToSentence(t *testing.T) {
	assert.Equal(t, toSentence([]string{"a"}), "a")
	assert.Equal(t, toSentence([]string{"a", "b"}), "a and b")
	assert.Equal(t, toSentence([]string{"a", "b", "c"}), "a, b, and c")
}

func TestServeHTTPWithoutListener(t *testing.T) {
	// The handler also works in-process, e.g. behind httptest.NewRecorder.
	s := New()
	seed := s.Seed()
	req, _ := http.NewRequest(http.MethodGet, "http://gitlab.test/api/v4/projects/42", nil)
	req.Header.Set("Private-Token", seed.OwnerToken)
	rec := &recorder{header: http.Header{}}
	s.ServeHTTP(rec, req)
	assert.Equal(t, rec.status, 200)
	assert.Check(t, is.Contains(rec.body, `"web_url":"http://gitlab.test/platform/deploy"`))
}

type recorder struct {
	header http.Header
	status int
	body   string
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.status = code }
func (r *recorder) Write(b []byte) (int, error) { r.body += string(b); return len(b), nil }

func TestDescendantGroupsAndProjects(t *testing.T) {
	srv, seed := NewTest(t)
	c := client(t, srv, seed.OwnerToken)
	gs, _, err := c.Groups.ListDescendantGroups(seed.PlatformGroupID, nil)
	assert.NilError(t, err)
	assert.Assert(t, len(gs) == 1)
	assert.Equal(t, gs[0].FullPath, "platform/runners")

	ps, _, err := c.Groups.ListGroupProjects(seed.PlatformGroupID, &gitlab.ListGroupProjectsOptions{IncludeSubGroups: new(true)})
	assert.NilError(t, err)
	var paths []string
	for _, p := range ps {
		paths = append(paths, p.PathWithNamespace)
	}
	assert.DeepEqual(t, paths, []string{"platform/deploy", "platform/runners/fleet"})

	ps, _, err = c.Groups.ListGroupProjects(seed.PlatformGroupID, nil)
	assert.NilError(t, err)
	assert.Equal(t, len(ps), 1)

	_, _, err = c.Groups.ListDescendantGroups(seed.OtherGroupID, nil)
	assert.Assert(t, errors.Is(err, gitlab.ErrNotFound))
}
