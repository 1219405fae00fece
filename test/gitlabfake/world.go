package gitlabfake

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Role is a GitLab membership access level.
type Role int

// Membership access levels, with GitLab's numeric values.
const (
	Guest      Role = 10
	Reporter   Role = 20
	Developer  Role = 30
	Maintainer Role = 40
	Owner      Role = 50
)

type user struct {
	id       int64
	username string
	admin    bool
}

type accessToken struct {
	id        int64
	name      string
	expiresAt *time.Time
	value     string
	userID    int64
	scopes    []string
	expired   bool
	revoked   bool
}

type group struct {
	id       int64
	path     string // last segment
	fullPath string
	parentID int64 // 0 for a top-level group
	// runnersToken is the group's registration token, made on first read as GitLab's
	// ensure_runners_token! does.
	runnersToken string
	// disallowRegistration is the namespace setting allow_runner_registration_token
	// turned off; only a top-level group's setting counts.
	disallowRegistration bool
}

type project struct {
	id       int64
	path     string
	fullPath string
	groupID  int64
	// runnersToken is the project's registration token, made on first read.
	runnersToken string
}

type memberKey struct {
	kind   string // "group" or "project"
	id     int64
	userID int64
}

// TokenOption changes an access token made by AddToken.
type TokenOption func(*accessToken)

// TokenExpired makes AddToken create a token that has already expired.
func TokenExpired() TokenOption { return func(t *accessToken) { t.expired = true } }

// TokenRevoked makes AddToken create a token that has been revoked.
func TokenRevoked() TokenOption { return func(t *accessToken) { t.revoked = true } }

// AddUser adds a user and returns its id. It panics if the username is taken.
func (s *Server) AddUser(username string, admin bool) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userByName(username) != nil {
		panic(fmt.Sprintf("gitlabfake: user %q already exists", username))
	}
	s.nextUserID++
	s.users = append(s.users, &user{id: s.nextUserID, username: username, admin: admin})
	return s.nextUserID
}

// AddToken creates a personal access token for username with the given scopes
// (api, read_api, create_runner, manage_runner, ...) and returns it. It panics if the
// user does not exist.
func (s *Server) AddToken(username string, scopes []string, opts ...TokenOption) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByName(username)
	if u == nil {
		panic(fmt.Sprintf("gitlabfake: no user %q", username))
	}
	s.nextTokenID++
	t := &accessToken{id: s.nextTokenID, name: "runner-bootstrap", value: "glpat-" + s.randomString(20), userID: u.id, scopes: slices.Clone(scopes)}
	for _, o := range opts {
		o(t)
	}
	s.tokens[t.value] = t
	return t.value
}

// AddGroup adds a group by full path and returns its id. The parent group of a
// subgroup ("a" for "a/b") must already exist; it panics otherwise.
func (s *Server) AddGroup(fullPath string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextGroupID++
	return s.addGroup(s.nextGroupID, fullPath)
}

// AddProject adds a project by full path and returns its id. Its namespace group
// must already exist; it panics otherwise.
func (s *Server) AddProject(fullPath string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextProjectID++
	return s.addProject(s.nextProjectID, fullPath)
}

// SetRole makes username a member of the group or project at fullPath. A group role
// is inherited by its subgroups and projects and the highest role wins. Role 0
// removes the direct membership. It panics when the user or path is unknown.
func (s *Server) SetRole(username, fullPath string, role Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByName(username)
	if u == nil {
		panic(fmt.Sprintf("gitlabfake: no user %q", username))
	}
	var k memberKey
	if g := s.groupByPath(fullPath); g != nil {
		k = memberKey{"group", g.id, u.id}
	} else if p := s.projectByPath(fullPath); p != nil {
		k = memberKey{"project", p.id, u.id}
	} else {
		panic(fmt.Sprintf("gitlabfake: no group or project %q", fullPath))
	}
	if role == 0 {
		delete(s.members, k)
		return
	}
	s.members[k] = role
}

func (s *Server) addGroup(id int64, fullPath string) int64 {
	if s.groupByPath(fullPath) != nil || s.projectByPath(fullPath) != nil {
		panic(fmt.Sprintf("gitlabfake: path %q already taken", fullPath))
	}
	parentPath, name := splitPath(fullPath)
	var parentID int64
	if parentPath != "" {
		parent := s.groupByPath(parentPath)
		if parent == nil {
			panic(fmt.Sprintf("gitlabfake: parent group %q of %q does not exist", parentPath, fullPath))
		}
		parentID = parent.id
	}
	s.groups = append(s.groups, &group{id: id, path: name, fullPath: fullPath, parentID: parentID})
	return id
}

func (s *Server) addProject(id int64, fullPath string) int64 {
	if s.groupByPath(fullPath) != nil || s.projectByPath(fullPath) != nil {
		panic(fmt.Sprintf("gitlabfake: path %q already taken", fullPath))
	}
	nsPath, name := splitPath(fullPath)
	ns := s.groupByPath(nsPath)
	if ns == nil {
		panic(fmt.Sprintf("gitlabfake: namespace group %q of %q does not exist", nsPath, fullPath))
	}
	s.projects = append(s.projects, &project{id: id, path: name, fullPath: fullPath, groupID: ns.id})
	return id
}

func splitPath(fullPath string) (parent, name string) {
	i := strings.LastIndex(fullPath, "/")
	if i < 0 {
		return "", fullPath
	}
	return fullPath[:i], fullPath[i+1:]
}

func (s *Server) userByName(name string) *user {
	for _, u := range s.users {
		if u.username == name {
			return u
		}
	}
	return nil
}

func (s *Server) userByID(id int64) *user {
	for _, u := range s.users {
		if u.id == id {
			return u
		}
	}
	return nil
}

// GitLab looks full paths up case-insensitively.
func (s *Server) groupByPath(p string) *group {
	for _, g := range s.groups {
		if strings.EqualFold(g.fullPath, p) {
			return g
		}
	}
	return nil
}

func (s *Server) projectByPath(p string) *project {
	for _, pr := range s.projects {
		if strings.EqualFold(pr.fullPath, p) {
			return pr
		}
	}
	return nil
}

func (s *Server) groupByID(id int64) *group {
	for _, g := range s.groups {
		if g.id == id {
			return g
		}
	}
	return nil
}

func (s *Server) projectByID(id int64) *project {
	for _, p := range s.projects {
		if p.id == id {
			return p
		}
	}
	return nil
}

// groupByRef resolves a numeric id or a full path, as the :id of /groups/:id.
func (s *Server) groupByRef(ref string) *group {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return s.groupByID(id)
	}
	return s.groupByPath(ref)
}

func (s *Server) projectByRef(ref string) *project {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return s.projectByID(id)
	}
	return s.projectByPath(ref)
}

// ancestors returns g and its ancestors, nearest first.
func (s *Server) ancestors(g *group) []*group {
	var out []*group
	for g != nil {
		out = append(out, g)
		if g.parentID == 0 {
			break
		}
		g = s.groupByID(g.parentID)
	}
	return out
}

func (s *Server) isDescendant(g, of *group) bool {
	for _, a := range s.ancestors(g) {
		if a.id == of.id {
			return true
		}
	}
	return false
}

// groupRole is the highest role of u on g or any of its ancestors. Admins are not
// special here; callers check admin separately.
func (s *Server) groupRole(u *user, g *group) Role {
	var best Role
	for _, a := range s.ancestors(g) {
		best = max(best, s.members[memberKey{"group", a.id, u.id}])
	}
	return best
}

func (s *Server) projectRole(u *user, p *project) Role {
	best := s.members[memberKey{"project", p.id, u.id}]
	if ns := s.groupByID(p.groupID); ns != nil {
		best = max(best, s.groupRole(u, ns))
	}
	return best
}

func (s *Server) canSeeProject(u *user, p *project) bool {
	return u.admin || s.projectRole(u, p) > 0
}

// canSeeGroup follows GroupPolicy: members (incl. inherited) read a private group, and
// so do members of any of its descendant groups or projects.
func (s *Server) canSeeGroup(u *user, g *group) bool {
	if u.admin || s.groupRole(u, g) > 0 {
		return true
	}
	for _, d := range s.groups {
		if s.members[memberKey{"group", d.id, u.id}] > 0 && s.isDescendant(d, g) {
			return true
		}
	}
	for _, p := range s.projects {
		ns := s.groupByID(p.groupID)
		if s.members[memberKey{"project", p.id, u.id}] > 0 && ns != nil && s.isDescendant(ns, g) {
			return true
		}
	}
	return false
}

// Seed is the standard world: who can do what, and the fixed ids tests may hard-code.
type Seed struct {
	// URL is the base URL without /api/v4. NewTest and Start fill it.
	URL string `json:"url"`

	AdminToken      string `json:"admin_token"`      // root, admin, scope api
	OwnerToken      string `json:"owner_token"`      // owner: Owner of group platform, scope api
	MaintainerToken string `json:"maintainer_token"` // maint: Maintainer of project platform/deploy, scope api
	DeveloperToken  string `json:"developer_token"`  // dev: Developer of project platform/deploy, scope api

	ReadAPIToken          string `json:"read_api_token"`           // owner, scope read_api only
	CreateRunnerOnlyToken string `json:"create_runner_only_token"` // owner, scope create_runner only
	ExpiredToken          string `json:"expired_token"`            // owner, scope api, expired
	RevokedToken          string `json:"revoked_token"`            // owner, scope api, revoked

	PlatformGroupID   int64 `json:"platform_group_id"`   // platform (10)
	RunnersSubgroupID int64 `json:"runners_subgroup_id"` // platform/runners (11)
	OtherGroupID      int64 `json:"other_group_id"`      // other (20)

	DeployProjectID int64 `json:"deploy_project_id"` // platform/deploy (42)
	FleetProjectID  int64 `json:"fleet_project_id"`  // platform/runners/fleet (43)
	OtherProjectID  int64 `json:"other_project_id"`  // other/app (50)
}

// Fixed ids of the standard seed.
const (
	SeedPlatformGroupID   int64 = 10
	SeedRunnersSubgroupID int64 = 11
	SeedOtherGroupID      int64 = 20
	SeedDeployProjectID   int64 = 42
	SeedFleetProjectID    int64 = 43
	SeedOtherProjectID    int64 = 50
)

// Seed builds the standard world and returns its tokens and ids. Calling it again
// returns the same Seed. Its URL is set only if the server was already started.
//
// Users: root (admin), owner (Owner of group platform), maint (Maintainer of project
// platform/deploy), dev (Developer of platform/deploy). Groups: platform (10),
// platform/runners (11), other (20). Projects: platform/deploy (42),
// platform/runners/fleet (43), other/app (50).
func (s *Server) Seed() Seed {
	s.mu.Lock()
	if s.seed != nil {
		seed := *s.seed
		seed.URL = s.baseURL
		s.mu.Unlock()
		return seed
	}
	s.addGroup(SeedPlatformGroupID, "platform")
	s.addGroup(SeedRunnersSubgroupID, "platform/runners")
	s.addGroup(SeedOtherGroupID, "other")
	s.addProject(SeedDeployProjectID, "platform/deploy")
	s.addProject(SeedFleetProjectID, "platform/runners/fleet")
	s.addProject(SeedOtherProjectID, "other/app")
	s.mu.Unlock()

	s.AddUser("root", true)
	s.AddUser("owner", false)
	s.AddUser("maint", false)
	s.AddUser("dev", false)
	s.SetRole("owner", "platform", Owner)
	s.SetRole("maint", "platform/deploy", Maintainer)
	s.SetRole("dev", "platform/deploy", Developer)

	api := []string{"api"}
	seed := Seed{
		AdminToken:            s.AddToken("root", api),
		OwnerToken:            s.AddToken("owner", api),
		MaintainerToken:       s.AddToken("maint", api),
		DeveloperToken:        s.AddToken("dev", api),
		ReadAPIToken:          s.AddToken("owner", []string{"read_api"}),
		CreateRunnerOnlyToken: s.AddToken("owner", []string{"create_runner"}),
		ExpiredToken:          s.AddToken("owner", api, TokenExpired()),
		RevokedToken:          s.AddToken("owner", api, TokenRevoked()),
		PlatformGroupID:       SeedPlatformGroupID,
		RunnersSubgroupID:     SeedRunnersSubgroupID,
		OtherGroupID:          SeedOtherGroupID,
		DeployProjectID:       SeedDeployProjectID,
		FleetProjectID:        SeedFleetProjectID,
		OtherProjectID:        SeedOtherProjectID,
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.seed = &seed
	seed.URL = s.baseURL
	return seed
}

// Env renders the seed as shell assignments (one per line) that scripts can
// source: GITLAB_URL, GITLAB_TOKEN (the owner's token), one line per seed token and
// the fixed ids. Token characters ([A-Za-z0-9_-]) need no quoting.
func (sd Seed) Env() string {
	lines := []struct {
		name, value string
	}{
		{"GITLAB_URL", sd.URL},
		{"GITLAB_API_URL", sd.URL + "/api/v4"},
		{"GITLAB_TOKEN", sd.OwnerToken},
		{"ADMIN_TOKEN", sd.AdminToken},
		{"OWNER_TOKEN", sd.OwnerToken},
		{"MAINTAINER_TOKEN", sd.MaintainerToken},
		{"DEVELOPER_TOKEN", sd.DeveloperToken},
		{"READ_API_TOKEN", sd.ReadAPIToken},
		{"CREATE_RUNNER_TOKEN", sd.CreateRunnerOnlyToken},
		{"EXPIRED_TOKEN", sd.ExpiredToken},
		{"REVOKED_TOKEN", sd.RevokedToken},
		{"PLATFORM_GROUP_ID", strconv.FormatInt(sd.PlatformGroupID, 10)},
		{"RUNNERS_SUBGROUP_ID", strconv.FormatInt(sd.RunnersSubgroupID, 10)},
		{"OTHER_GROUP_ID", strconv.FormatInt(sd.OtherGroupID, 10)},
		{"DEPLOY_PROJECT_ID", strconv.FormatInt(sd.DeployProjectID, 10)},
		{"FLEET_PROJECT_ID", strconv.FormatInt(sd.FleetProjectID, 10)},
		{"OTHER_PROJECT_ID", strconv.FormatInt(sd.OtherProjectID, 10)},
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.name + "=" + l.value + "\n")
	}
	return b.String()
}
