package gitlabfake

import (
	"net/http"
)

// Legacy runner registration (registration tokens) and what reveals whether it still works:
// the instance setting allow_runner_registration_token (GET /application/settings, admin),
// the top-level group's namespace setting of the same name (no API; it shows only through
// runners_token), and runners_token in GET /projects/:id and /groups/:id.
// Sources: app/services/ci/runners/register_runner_service.rb, app/models/project.rb and
// group.rb (runners_token returns nil unless allow_runner_registration_token?),
// lib/api/entities/project.rb and group_detail.rb (runners_token exposed only when the user
// can admin_project / admin_group).

const (
	registrationAuthenticatedUser = "authenticated_user"
	registrationToken             = "registration_token"
	registrationTokenPrefix       = "GR1348941"
)

// SetRegistrationTokensAllowed sets the instance setting allow_runner_registration_token
// (false, the 17.0+ default, when the server starts).
func (s *Server) SetRegistrationTokensAllowed(allowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowRegistrationToken = allowed
}

// SetGroupRegistrationTokensAllowed sets the namespace setting allow_runner_registration_token
// of the top-level group at fullPath (true by default). It panics for an unknown or
// non-top-level group, where GitLab has no such setting.
func (s *Server) SetGroupRegistrationTokensAllowed(fullPath string, allowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupByPath(fullPath)
	if g == nil || g.parentID != 0 {
		panic("gitlabfake: " + fullPath + " is not a top-level group")
	}
	g.disallowRegistration = !allowed
}

// RegistrationToken returns the registration token of a project ("project", id), a group
// ("group", id) or the instance ("instance", 0), making one if needed, whether or not
// registration tokens are allowed there: tests register legacy runners with it the way
// gitlab-runner register --registration-token does. It panics for an unknown owner.
func (s *Server) RegistrationToken(owner string, id int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch owner {
	case "project":
		if p := s.projectByID(id); p != nil {
			return s.ensureProjectToken(p)
		}
	case "group":
		if g := s.groupByID(id); g != nil {
			return s.ensureGroupToken(g)
		}
	case "instance":
		return s.ensureInstanceToken()
	}
	panic("gitlabfake: no " + owner + " " + itoa(id))
}

func (s *Server) newRegistrationToken() string {
	return registrationTokenPrefix + s.randomString(20)
}

func (s *Server) ensureProjectToken(p *project) string {
	if p.runnersToken == "" {
		p.runnersToken = s.newRegistrationToken()
	}
	return p.runnersToken
}

func (s *Server) ensureGroupToken(g *group) string {
	if g.runnersToken == "" {
		g.runnersToken = s.newRegistrationToken()
	}
	return g.runnersToken
}

func (s *Server) ensureInstanceToken() string {
	if s.instanceRunnersToken == "" {
		s.instanceRunnersToken = s.newRegistrationToken()
	}
	return s.instanceRunnersToken
}

// registrationAllowed is Namespace#allow_runner_registration_token?: the top-level group's
// setting and the instance's.
func (s *Server) registrationAllowed(g *group) bool {
	if !s.allowRegistrationToken || g == nil {
		return false
	}
	as := s.ancestors(g)
	return !as[len(as)-1].disallowRegistration
}

// projectRunnersToken is what GET /projects/:id shows as runners_token: absent (nil, false)
// unless the user can admin the project (Maintainer+), null while registration is disallowed.
func (s *Server) projectRunnersToken(u *user, p *project) (*string, bool) {
	if !u.admin && s.projectRole(u, p) < Maintainer {
		return nil, false
	}
	if !s.registrationAllowed(s.groupByID(p.groupID)) {
		return nil, true
	}
	t := s.ensureProjectToken(p)
	return &t, true
}

// groupRunnersToken is what GET /groups/:id shows as runners_token: only to Owners.
func (s *Server) groupRunnersToken(u *user, g *group) (*string, bool) {
	if !u.admin && s.groupRole(u, g) < Owner {
		return nil, false
	}
	if !s.registrationAllowed(g) {
		return nil, true
	}
	t := s.ensureGroupToken(g)
	return &t, true
}

type applicationSettingsJSON struct {
	ID                                   int64    `json:"id"`
	AllowRunnerRegistrationToken         bool     `json:"allow_runner_registration_token"`
	ValidRunnerRegistrars                []string `json:"valid_runner_registrars"`
	RunnersRegistrationToken             *string  `json:"runners_registration_token"`
	RunnerTokenExpirationInterval        *int64   `json:"runner_token_expiration_interval"`
	GroupRunnerTokenExpirationInterval   *int64   `json:"group_runner_token_expiration_interval"`
	ProjectRunnerTokenExpirationInterval *int64   `json:"project_runner_token_expiration_interval"`
	SharedRunnersEnabled                 bool     `json:"shared_runners_enabled"`
}

// GET /application/settings (authenticated_as_admin!). The real answer has some hundred
// keys; these are the ones about runners.
func (s *Server) getApplicationSettings(c *call) {
	if !c.user.admin {
		c.forbidden("")
		return
	}
	var interval *int64
	if s.runnerTokenExpiration > 0 {
		secs := int64(s.runnerTokenExpiration.Seconds())
		interval = &secs
	}
	var tok *string
	if s.allowRegistrationToken {
		t := s.ensureInstanceToken()
		tok = &t
	}
	c.resp.json(http.StatusOK, applicationSettingsJSON{
		ID:                                   1,
		AllowRunnerRegistrationToken:         s.allowRegistrationToken,
		ValidRunnerRegistrars:                []string{"project", "group"},
		RunnersRegistrationToken:             tok,
		RunnerTokenExpirationInterval:        interval,
		GroupRunnerTokenExpirationInterval:   interval,
		ProjectRunnerTokenExpirationInterval: interval,
		SharedRunnersEnabled:                 true,
	})
}

// POST /runners is legacy registration with a registration token
// (Ci::Runners::RegisterRunnerService): the instance, a project or a group token creates a
// runner of that type (201); a known token where registration is disallowed, or any unknown
// token while the instance disallows it, is 410; an unknown token otherwise is 403.
func (s *Server) registerLegacyRunner(c *call) {
	v := &validator{p: c.p}
	tok, _ := v.requireStr("token")
	if v.has("active") && v.has("paused") {
		v.fail("active, paused are mutually exclusive")
	}
	if v.has("maintenance_note") && v.has("maintainer_note") {
		v.fail("maintainer_note, maintenance_note are mutually exclusive")
	}
	desc, _ := v.str("description")
	note, hasNote := v.str("maintenance_note")
	if !hasNote {
		note, _ = v.str("maintainer_note")
	}
	paused := v.boolean("paused")
	locked := v.boolean("locked")
	runUntagged := v.boolean("run_untagged")
	tags, _ := v.tagList("tag_list")
	access, hasAccess := v.values("access_level", false, notProtected, refProtected)
	maxTimeout, _ := v.integer("maximum_timeout")
	if v.failed() {
		c.grapeError(http.StatusBadRequest, v.message())
		return
	}
	rn := &runner{description: desc, maintenanceNote: note, accessLevel: notProtected, tags: tags, runUntagged: true,
		maximumTimeout: maxTimeout, registrationType: registrationToken}
	allowed := false
	switch {
	case s.instanceRunnersToken != "" && tok == s.instanceRunnersToken:
		rn.typ, allowed = typeInstance, s.allowRegistrationToken
	case s.projectByRunnersToken(tok) != nil:
		p := s.projectByRunnersToken(tok)
		rn.typ, rn.projectIDs = typeProject, []int64{p.id}
		allowed = s.registrationAllowed(s.groupByID(p.groupID))
	case s.groupByRunnersToken(tok) != nil:
		g := s.groupByRunnersToken(tok)
		rn.typ, rn.groupID = typeGroup, g.id
		allowed = s.registrationAllowed(g)
	case !s.allowRegistrationToken:
		c.message(http.StatusGone, "410 Gone - runner registration disallowed")
		return
	default:
		c.forbidden("invalid token supplied")
		return
	}
	if !allowed {
		c.message(http.StatusGone, "410 Gone - runner registration disallowed")
		return
	}
	if hasAccess {
		rn.accessLevel = access
	}
	if paused != nil {
		rn.paused = *paused
	}
	if locked != nil {
		rn.locked = *locked
	}
	if runUntagged != nil {
		rn.runUntagged = *runUntagged
	}
	if e := validateRunner(rn); e.any() {
		c.validationError(e)
		return
	}
	s.nextRunnerID++
	rn.id = s.nextRunnerID
	rn.createdAt = s.now()
	s.resetToken(rn)
	// Runners registered this way get glrtr- tokens (since 2025-03).
	rn.token = "glrtr-" + rn.token[len("glrt-"):]
	s.runners = append(s.runners, rn)
	c.resp.json(http.StatusCreated, tokenJSON{ID: rn.id, Token: rn.token, TokenExpiresAt: timePtrJSON(rn.tokenExpiresAt)})
}

func (s *Server) projectByRunnersToken(tok string) *project {
	for _, p := range s.projects {
		if tok != "" && p.runnersToken == tok {
			return p
		}
	}
	return nil
}

func (s *Server) groupByRunnersToken(tok string) *group {
	for _, g := range s.groups {
		if tok != "" && g.runnersToken == tok {
			return g
		}
	}
	return nil
}

// POST /jobs/request is what every gitlab-runner process polls. Like verify, it
// authenticates the runner (403 for an unknown or expired token), sets contacted_at and
// finds or creates the manager for system_id. The fake never has a job to give: 204.
func (s *Server) requestJob(c *call) {
	var systemID string
	r := s.authenticateRunner(c, func(v *validator) { systemID, _ = v.str("system_id") })
	if r == nil {
		return
	}
	info, _ := c.p["info"].(map[string]any)
	s.heartbeat(r, systemID, info)
	c.resp.header.Set("X-GitLab-Last-Update", itoa(s.now().Unix()))
	c.noContent()
}
