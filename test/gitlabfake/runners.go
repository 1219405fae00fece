package gitlabfake

import (
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

const (
	onlineTimeout = 2 * time.Hour      // Ci::Runner::ONLINE_CONTACT_TIMEOUT
	staleTimeout  = 7 * 24 * time.Hour // Ci::Runner::STALE_TIMEOUT
	maxTags       = 50
	maxNoteLength = 1024 // description and maintenance_note
	minTimeout    = int64(10 * 60)
	legacySystem  = "<legacy>" // manager system_id when verify sends none
	noAccess      = "No access granted"

	typeInstance = "instance_type"
	typeGroup    = "group_type"
	typeProject  = "project_type"
	notProtected = "not_protected"
	refProtected = "ref_protected"
)

var (
	runnerTypes    = []string{typeInstance, typeGroup, typeProject}
	runnerStatuses = []string{"active", "paused", "online", "offline", "never_contacted", "stale"}
	runnerScopes   = append(slices.Clone(runnerStatuses), runnerTypes...)
)

type runner struct {
	id              int64
	typ             string
	projectIDs      []int64
	groupID         int64
	description     string
	maintenanceNote string
	accessLevel     string
	tags            []string
	runUntagged     bool
	locked          bool
	paused          bool
	maximumTimeout  *int64
	token           string
	tokenExpiresAt  *time.Time
	// rotationDeadline is token_rotation_deadline (EE 18.10+): no reset after it.
	rotationDeadline *time.Time
	createdAt        time.Time
	updatedAt        time.Time
	contactedAt      *time.Time
	creatorID        int64
	// registrationType is GitLab's registration_type (GraphQL creationMethod):
	// authenticated_user (POST /user/runners) or registration_token (legacy POST /runners).
	registrationType string
	managers         []*manager
}

type manager struct {
	id           int64
	systemID     string
	createdAt    time.Time
	contactedAt  time.Time
	version      string
	revision     string
	platform     string
	architecture string
}

func (r *runner) clone() *runner {
	c := *r
	c.projectIDs = slices.Clone(r.projectIDs)
	c.tags = slices.Clone(r.tags)
	if r.maximumTimeout != nil {
		v := *r.maximumTimeout
		c.maximumTimeout = &v
	}
	if r.tokenExpiresAt != nil {
		v := *r.tokenExpiresAt
		c.tokenExpiresAt = &v
	}
	if r.contactedAt != nil {
		v := *r.contactedAt
		c.contactedAt = &v
	}
	c.managers = nil
	for _, m := range r.managers {
		mc := *m
		c.managers = append(c.managers, &mc)
	}
	return &c
}

func (s *Server) runnerByID(id int64) *runner {
	for _, r := range s.runners {
		if r.id == id {
			return r
		}
	}
	return nil
}

// runnerByToken is Ci::Runner.find_by_token: expired tokens are not found.
func (s *Server) runnerByToken(tok string) *runner {
	if tok == "" {
		return nil
	}
	now := s.now()
	for _, r := range s.runners {
		if r.token == tok && (r.tokenExpiresAt == nil || !r.tokenExpiresAt.Before(now)) {
			return r
		}
	}
	return nil
}

func (s *Server) removeRunner(id int64) bool {
	i := slices.IndexFunc(s.runners, func(r *runner) bool { return r.id == id })
	if i < 0 {
		return false
	}
	s.runners = slices.Delete(s.runners, i, i+1)
	return true
}

// resetToken is reset_token!: a new token, expiry recomputed, the old one dead at once.
func (s *Server) resetToken(r *runner) {
	r.rotationDeadline = nil
	prefix := map[string]string{typeInstance: "t1_", typeGroup: "t2_", typeProject: "t3_"}[r.typ]
	r.token = "glrt-" + prefix + s.randomString(20)
	r.tokenExpiresAt = nil
	if s.runnerTokenExpiration > 0 {
		t := s.now().Add(s.runnerTokenExpiration)
		r.tokenExpiresAt = &t
	}
	r.updatedAt = s.now()
}

// heartbeat is what authenticate_runner! does on verify: contacted_at and a manager.
func (s *Server) heartbeat(r *runner, systemID string, info map[string]any) {
	now := s.now()
	r.contactedAt = &now
	if systemID == "" {
		systemID = legacySystem
	}
	var m *manager
	for _, existing := range r.managers {
		if existing.systemID == systemID {
			m = existing
		}
	}
	if m == nil {
		s.nextManagerID++
		m = &manager{id: s.nextManagerID, systemID: systemID, createdAt: now}
		r.managers = append(r.managers, m)
	}
	m.contactedAt = now
	str := func(k string) string {
		v, _ := coerceString(info[k])
		return v
	}
	if info != nil {
		m.version, m.revision, m.platform, m.architecture = str("version"), str("revision"), str("platform"), str("architecture")
	}
}

func (s *Server) online(r *runner) bool {
	return r.contactedAt != nil && r.contactedAt.After(s.now().Add(-onlineTimeout))
}

func (s *Server) stale(r *runner) bool {
	last := r.createdAt
	if r.contactedAt != nil && r.contactedAt.After(last) {
		last = *r.contactedAt
	}
	return !last.After(s.now().Add(-staleTimeout))
}

// restStatus is the deprecated REST status (Ci::Runner#deprecated_rest_status).
func (s *Server) restStatus(r *runner) string {
	switch {
	case s.stale(r):
		return "stale"
	case r.contactedAt == nil:
		return "never_contacted"
	case r.paused:
		return "paused"
	case s.online(r):
		return "online"
	}
	return "offline"
}

func (s *Server) managerStatus(m *manager) string {
	now := s.now()
	switch {
	case !m.contactedAt.After(now.Add(-staleTimeout)):
		return "stale"
	case m.contactedAt.After(now.Add(-onlineTimeout)):
		return "online"
	}
	return "offline"
}

func (s *Server) canReadRunner(u *user, r *runner) bool {
	if u.admin || r.typ == typeInstance || s.canUpdateRunner(u, r) {
		return true
	}
	switch r.typ {
	case typeGroup:
		g := s.groupByID(r.groupID)
		return g != nil && s.groupRole(u, g) >= Maintainer
	case typeProject:
		for _, id := range r.projectIDs {
			if p := s.projectByID(id); p != nil && s.projectRole(u, p) >= Maintainer {
				return true
			}
		}
	}
	return false
}

// canUpdateRunner is update_runner: instance → admin, group → Owner, project →
// Maintainer+ of the owner (first) project.
func (s *Server) canUpdateRunner(u *user, r *runner) bool {
	if u.admin {
		return true
	}
	switch r.typ {
	case typeGroup:
		g := s.groupByID(r.groupID)
		return g != nil && s.groupRole(u, g) >= Owner
	case typeProject:
		if len(r.projectIDs) == 0 {
			return false
		}
		p := s.projectByID(r.projectIDs[0])
		return p != nil && s.projectRole(u, p) >= Maintainer
	}
	return false
}

// validateRunner runs the Ci::Runner model validations the API can trigger.
func validateRunner(r *runner) *fieldErrors {
	e := &fieldErrors{}
	if !r.runUntagged && len(r.tags) == 0 {
		e.add("tags_list", "can not be empty when runner is not allowed to pick untagged jobs")
	}
	if len(r.tags) > maxTags {
		e.add("tags_list", "Too many tags specified. Please limit the number of tags to 50")
	}
	if r.maximumTimeout != nil && *r.maximumTimeout < minTimeout {
		e.add("maximum_timeout", "needs to be at least 10 minutes")
	}
	if utf8.RuneCountInString(r.maintenanceNote) > maxNoteLength {
		e.add("maintenance_note", "is too long (maximum is 1024 characters)")
	}
	if utf8.RuneCountInString(r.description) > maxNoteLength {
		e.add("description", "is too long (maximum is 1024 characters)")
	}
	return e
}

// JSON entities.

type runnerJSON struct {
	ID          int64   `json:"id"`
	Description *string `json:"description"`
	IPAddress   *string `json:"ip_address"`
	Active      bool    `json:"active"`
	Paused      bool    `json:"paused"`
	IsShared    bool    `json:"is_shared"`
	RunnerType  string  `json:"runner_type"`
	Name        *string `json:"name"`
	Online      *bool   `json:"online"`
	Status      string  `json:"status"`
}

type runnerProjectJSON struct {
	ID                int64   `json:"id"`
	Description       *string `json:"description"`
	Name              string  `json:"name"`
	NameWithNamespace string  `json:"name_with_namespace"`
	Path              string  `json:"path"`
	PathWithNamespace string  `json:"path_with_namespace"`
	WebURL            string  `json:"web_url"`
}

type runnerGroupJSON struct {
	ID     int64  `json:"id"`
	WebURL string `json:"web_url"`
	Name   string `json:"name"`
}

type runnerDetailsJSON struct {
	runnerJSON
	TagList         []string            `json:"tag_list"`
	RunUntagged     bool                `json:"run_untagged"`
	Locked          bool                `json:"locked"`
	MaximumTimeout  *int64              `json:"maximum_timeout"`
	AccessLevel     string              `json:"access_level"`
	Version         *string             `json:"version"`
	Revision        *string             `json:"revision"`
	Platform        *string             `json:"platform"`
	Architecture    *string             `json:"architecture"`
	ContactedAt     *string             `json:"contacted_at"`
	MaintenanceNote *string             `json:"maintenance_note"`
	Projects        []runnerProjectJSON `json:"projects"`
	Groups          []runnerGroupJSON   `json:"groups"`
	// TokenExpiresAt is a JSON time or null, and absent before 19.0 (#8; see versions.go).
	TokenExpiresAt any `json:"token_expires_at,omitempty"`
}

type managerJSON struct {
	ID                 int64   `json:"id"`
	SystemID           string  `json:"system_id"`
	Version            *string `json:"version"`
	Revision           *string `json:"revision"`
	Platform           *string `json:"platform"`
	Architecture       *string `json:"architecture"`
	CreatedAt          string  `json:"created_at"`
	ContactedAt        string  `json:"contacted_at"`
	IPAddress          *string `json:"ip_address"`
	Status             string  `json:"status"`
	JobExecutionStatus string  `json:"job_execution_status"`
}

type tokenJSON struct {
	ID             int64   `json:"id"`
	Token          string  `json:"token"`
	TokenExpiresAt *string `json:"token_expires_at"`
}

type resetTokenJSON struct {
	Token          string  `json:"token"`
	TokenExpiresAt *string `json:"token_expires_at"`
}

func (s *Server) runnerEntity(r *runner) runnerJSON {
	var online *bool
	if r.contactedAt != nil {
		o := s.online(r)
		online = &o
	}
	return runnerJSON{
		ID:          r.id,
		Description: strPtrOrNil(r.description),
		Active:      !r.paused,
		Paused:      r.paused,
		IsShared:    r.typ == typeInstance,
		RunnerType:  r.typ,
		Online:      online,
		Status:      s.restStatus(r),
	}
}

func (s *Server) runnerDetails(c *call, r *runner) runnerDetailsJSON {
	d := runnerDetailsJSON{
		runnerJSON:     s.runnerEntity(r),
		TagList:        append([]string{}, r.tags...),
		RunUntagged:    r.runUntagged,
		Locked:         r.locked,
		MaximumTimeout: r.maximumTimeout,
		AccessLevel:    r.accessLevel,
		ContactedAt:    timePtrJSON(r.contactedAt),
		Projects:       []runnerProjectJSON{},
		Groups:         []runnerGroupJSON{},
	}
	if s.release.at(19, 0) {
		d.TokenExpiresAt = timePtrJSON(r.tokenExpiresAt)
	}
	var latest *manager
	for _, m := range r.managers {
		if latest == nil || !m.contactedAt.Before(latest.contactedAt) {
			latest = m
		}
	}
	if latest != nil {
		d.Version, d.Revision = strPtrOrNil(latest.version), strPtrOrNil(latest.revision)
		d.Platform, d.Architecture = strPtrOrNil(latest.platform), strPtrOrNil(latest.architecture)
	}
	if s.canUpdateRunner(c.user, r) {
		d.MaintenanceNote = strPtrOrNil(r.maintenanceNote)
	}
	// Non-admins see only the projects and groups they are authorized for.
	for _, id := range r.projectIDs {
		if p := s.projectByID(id); p != nil && s.canSeeProject(c.user, p) {
			d.Projects = append(d.Projects, s.runnerProject(c, p))
		}
	}
	if r.typ == typeGroup {
		if g := s.groupByID(r.groupID); g != nil && (c.user.admin || s.groupRole(c.user, g) > 0) {
			d.Groups = append(d.Groups, runnerGroupJSON{ID: g.id, WebURL: c.base() + "/groups/" + g.fullPath, Name: g.path})
		}
	}
	return d
}

func (s *Server) runnerProject(c *call, p *project) runnerProjectJSON {
	return runnerProjectJSON{
		ID:                p.id,
		Name:              p.path,
		NameWithNamespace: s.fullName(p.fullPath),
		Path:              p.path,
		PathWithNamespace: p.fullPath,
		WebURL:            c.base() + "/" + p.fullPath,
	}
}

func managerEntity(s *Server, m *manager) managerJSON {
	return managerJSON{
		ID:                 m.id,
		SystemID:           m.systemID,
		Version:            strPtrOrNil(m.version),
		Revision:           strPtrOrNil(m.revision),
		Platform:           strPtrOrNil(m.platform),
		Architecture:       strPtrOrNil(m.architecture),
		CreatedAt:          timeJSON(m.createdAt),
		ContactedAt:        timeJSON(m.contactedAt),
		Status:             s.managerStatus(m),
		JobExecutionStatus: "idle",
	}
}

// POST /user/runners
func (s *Server) createUserRunner(c *call) {
	v := &validator{p: c.p}
	typ, _ := v.values("runner_type", true, runnerTypes...)
	var groupID, projectID *int64
	switch typ {
	case typeGroup:
		groupID = v.requireInt("group_id")
	case typeProject:
		projectID = v.requireInt("project_id")
	}
	desc, _ := v.str("description")
	note, _ := v.str("maintenance_note")
	paused := v.boolean("paused")
	locked := v.boolean("locked")
	runUntagged := v.boolean("run_untagged")
	tags, _ := v.tagList("tag_list")
	access, hasAccess := v.values("access_level", false, notProtected, refProtected)
	maxTimeout, _ := v.integer("maximum_timeout")
	expiry := s.readExpiryParams(v)
	if v.failed() {
		c.grapeError(http.StatusBadRequest, v.message())
		return
	}

	rn := &runner{
		typ:            typ,
		description:    desc,
		accessLevel:    notProtected,
		tags:           tags,
		runUntagged:    true,
		maximumTimeout: maxTimeout,
		creatorID:      c.user.id,

		registrationType: registrationAuthenticatedUser,
	}
	rn.maintenanceNote = note
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

	// The creation strategy validates the scope, then asks for create permission.
	allowed := c.user.admin
	switch typ {
	case typeGroup:
		var g *group
		if groupID != nil {
			g = s.groupByID(*groupID)
		}
		if g == nil {
			c.badRequest("Missing/invalid group")
			return
		}
		rn.groupID = g.id
		allowed = allowed || s.groupRole(c.user, g) >= Owner
	case typeProject:
		var p *project
		if projectID != nil {
			p = s.projectByID(*projectID)
		}
		if p == nil {
			c.badRequest("Missing/invalid project")
			return
		}
		rn.projectIDs = []int64{p.id}
		allowed = allowed || s.projectRole(c.user, p) >= Maintainer
	}
	if !allowed {
		c.forbidden("Insufficient permissions")
		return
	}
	if e := validateRunner(rn); e.any() {
		c.badRequest(toSentence(e.fullMessages()))
		return
	}
	if msg := s.checkExpiry(expiry); msg != "" {
		c.badRequest(msg)
		return
	}

	now := s.now()
	s.nextRunnerID++
	rn.id = s.nextRunnerID
	rn.createdAt = now
	s.resetToken(rn)
	if expiry.expiresAt != nil {
		rn.tokenExpiresAt = expiry.expiresAt
		rn.rotationDeadline = expiry.deadline
	}
	s.runners = append(s.runners, rn)
	c.resp.json(http.StatusCreated, tokenJSON{ID: rn.id, Token: rn.token, TokenExpiresAt: timePtrJSON(rn.tokenExpiresAt)})
}

// runnerFromPath resolves /runners/:id, answering 400 for a non-integer id and 404
// for an unknown one.
func (s *Server) runnerFromPath(c *call, v *validator) *runner {
	id, err := strconv.ParseInt(c.args[0], 10, 64)
	if err != nil {
		v.fail("id is invalid")
	}
	if v.failed() {
		c.grapeError(http.StatusBadRequest, v.message())
		return nil
	}
	r := s.runnerByID(id)
	if r == nil {
		c.notFound("Runner")
	}
	return r
}

// GET /runners/:id
func (s *Server) getRunner(c *call) {
	r := s.runnerFromPath(c, &validator{p: c.p})
	if r == nil {
		return
	}
	if !s.canReadRunner(c.user, r) {
		c.forbidden(noAccess)
		return
	}
	c.resp.json(http.StatusOK, s.runnerDetails(c, r))
}

// GET /runners/:id/managers
func (s *Server) listRunnerManagers(c *call) {
	r := s.runnerFromPath(c, &validator{p: c.p})
	if r == nil {
		return
	}
	if !s.canReadRunner(c.user, r) {
		c.forbidden(noAccess)
		return
	}
	out := []managerJSON{}
	for _, m := range r.managers {
		out = append(out, managerEntity(s, m))
	}
	c.resp.json(http.StatusOK, out)
}

var updateRunnerParams = []string{"description", "active", "paused", "tag_list", "run_untagged", "locked", "access_level", "maximum_timeout", "maintenance_note"}

// PUT /runners/:id
func (s *Server) updateRunner(c *call) {
	v := &validator{p: c.p}
	if _, err := strconv.ParseInt(c.args[0], 10, 64); err != nil {
		v.fail("id is invalid")
	}
	desc, hasDesc := v.str("description")
	active := v.boolean("active")
	paused := v.boolean("paused")
	tags, hasTags := v.tagList("tag_list")
	runUntagged := v.boolean("run_untagged")
	locked := v.boolean("locked")
	access, hasAccess := v.values("access_level", false, notProtected, refProtected)
	maxTimeout, hasMaxTimeout := v.integer("maximum_timeout")
	note, hasNote := v.str("maintenance_note")
	if v.has("active") && v.has("paused") {
		v.fail("active, paused are mutually exclusive")
	}
	if !slices.ContainsFunc(updateRunnerParams, v.has) {
		// The exact Grape wording is unverified in the reference; this is its text.
		v.fail("description, active, paused, tag_list, run_untagged, locked, access_level, maximum_timeout, maintenance_note are missing, at least one parameter must be provided")
	}
	r := s.runnerFromPath(c, v)
	if r == nil {
		return
	}
	if !s.canUpdateRunner(c.user, r) {
		c.forbidden(noAccess)
		return
	}
	upd := r.clone()
	if hasDesc {
		upd.description = desc
	}
	if active != nil {
		upd.paused = !*active
	}
	if paused != nil {
		upd.paused = *paused
	}
	if hasTags {
		upd.tags = tags
	}
	if runUntagged != nil {
		upd.runUntagged = *runUntagged
	}
	if locked != nil {
		upd.locked = *locked
	}
	if hasAccess {
		upd.accessLevel = access
	}
	if hasMaxTimeout {
		upd.maximumTimeout = maxTimeout
	}
	if hasNote {
		upd.maintenanceNote = note
	}
	if e := validateRunner(upd); e.any() {
		c.validationError(e)
		return
	}
	upd.updatedAt = s.now()
	upd.managers = r.managers
	*r = *upd
	c.resp.json(http.StatusOK, s.runnerDetails(c, r))
}

// DELETE /runners/:id
func (s *Server) deleteRunner(c *call) {
	r := s.runnerFromPath(c, &validator{p: c.p})
	if r == nil {
		return
	}
	if !c.user.admin {
		if len(r.projectIDs) > 1 {
			c.forbidden("Runner associated with more than one project")
			return
		}
		if !s.canUpdateRunner(c.user, r) {
			c.forbidden(noAccess)
			return
		}
	}
	// destroy_conditionally! honours If-Unmodified-Since.
	if h := c.r.Header.Get("If-Unmodified-Since"); h != "" {
		if t, err := http.ParseTime(h); err == nil && r.updatedAt.Truncate(time.Second).After(t) {
			c.message(http.StatusPreconditionFailed, "412 Precondition Failed")
			return
		}
	}
	s.removeRunner(r.id)
	c.noContent()
}

// POST /runners/:id/reset_authentication_token
func (s *Server) resetRunnerTokenByID(c *call) {
	r := s.runnerFromPath(c, &validator{p: c.p})
	if r == nil {
		return
	}
	if !s.canUpdateRunner(c.user, r) {
		c.forbidden(noAccess)
		return
	}
	if r.rotationDeadline != nil && !r.rotationDeadline.After(s.now()) {
		// EE ResetAuthenticationTokenService: reason :forbidden, rendered as {"error": ...}.
		c.resp.json(http.StatusForbidden, map[string]string{"error": "Token rotation deadline has passed"})
		return
	}
	s.resetToken(r)
	c.resp.json(http.StatusCreated, resetTokenJSON{Token: r.token, TokenExpiresAt: timePtrJSON(r.tokenExpiresAt)})
}

// Listing.

type runnerFilter struct {
	scope, typ, status string
	paused             *bool
	tags               []string
}

// readRunnerFilter validates the shared list filters. scopeAllowed is nil where
// the endpoint does not declare scope (groups).
func readRunnerFilter(v *validator, scopeAllowed []string) (runnerFilter, page, bool) {
	var f runnerFilter
	if scopeAllowed != nil {
		f.scope, _ = v.values("scope", false, runnerScopes...)
	}
	f.typ, _ = v.values("type", false, runnerTypes...)
	f.paused = v.boolean("paused")
	f.status, _ = v.values("status", false, runnerStatuses...)
	f.tags, _ = v.tagList("tag_list")
	pg := v.pagination()
	if v.failed() {
		return f, pg, false
	}
	return f, pg, true
}

func (s *Server) matchRunner(r *runner, f runnerFilter) bool {
	if f.scope != "" && !s.runnerHasState(r, f.scope) {
		return false
	}
	if f.typ != "" && r.typ != f.typ {
		return false
	}
	if f.paused != nil && r.paused != *f.paused {
		return false
	}
	if f.status != "" && !s.runnerHasState(r, f.status) {
		return false
	}
	// tagged_with matches runners that have all the listed tags.
	for _, t := range f.tags {
		if !slices.Contains(r.tags, t) {
			return false
		}
	}
	return true
}

// runnerHasState evaluates a status or type scope (Ci::Runner scopes).
func (s *Server) runnerHasState(r *runner, state string) bool {
	switch state {
	case "active":
		return !r.paused
	case "paused":
		return r.paused
	case "online":
		return s.online(r)
	case "offline":
		return r.contactedAt != nil && !s.online(r)
	case "never_contacted":
		return r.contactedAt == nil
	case "stale":
		return s.stale(r)
	}
	return r.typ == state
}

func (s *Server) respondRunnerList(c *call, candidates []*runner, scopeAllowed []string, declaresScope bool) {
	v := &validator{p: c.p}
	var allowed []string
	if declaresScope {
		allowed = scopeAllowed
	}
	f, pg, ok := readRunnerFilter(v, allowed)
	if !ok {
		c.grapeError(http.StatusBadRequest, v.message())
		return
	}
	if f.scope != "" && !slices.Contains(scopeAllowed, f.scope) {
		c.message(http.StatusBadRequest, "Scope contains invalid value")
		return
	}
	var matched []*runner
	for _, r := range candidates {
		if s.matchRunner(r, f) {
			matched = append(matched, r)
		}
	}
	out := []runnerJSON{}
	for _, r := range paginate(c, pg, matched) {
		out = append(out, s.runnerEntity(r))
	}
	c.resp.json(http.StatusOK, out)
}

// GET /runners lists the runners available to the user (ci_available_runners),
// simplified to: project runners of projects the user maintains (or owns) and group
// runners of groups where the user is at least Maintainer. Instance runners are
// not listed, not even for admins (they use /runners/all).
func (s *Server) listOwnedRunners(c *call) {
	var mine []*runner
	for _, r := range s.runners {
		switch r.typ {
		case typeGroup:
			if g := s.groupByID(r.groupID); g != nil && s.groupRole(c.user, g) >= Maintainer {
				mine = append(mine, r)
			}
		case typeProject:
			if slices.ContainsFunc(r.projectIDs, func(id int64) bool {
				p := s.projectByID(id)
				return p != nil && s.projectRole(c.user, p) >= Maintainer
			}) {
				mine = append(mine, r)
			}
		}
	}
	s.respondRunnerList(c, mine, runnerStatuses, true)
}

// GET /runners/all
func (s *Server) listAllRunners(c *call) {
	if !c.user.admin {
		c.forbidden("")
		return
	}
	s.respondRunnerList(c, s.runners, runnerScopes, true)
}

// GET /projects/:id/runners: the project's runners, its ancestor groups' runners and
// instance runners. Needs Maintainer+.
func (s *Server) listProjectRunners(c *call) {
	p := s.userProject(c)
	if p == nil {
		return
	}
	if !c.user.admin && s.projectRole(c.user, p) < Maintainer {
		c.forbidden("")
		return
	}
	ancestors := s.ancestors(s.groupByID(p.groupID))
	var list []*runner
	for _, r := range s.runners {
		switch r.typ {
		case typeInstance:
			list = append(list, r)
		case typeGroup:
			if slices.ContainsFunc(ancestors, func(g *group) bool { return g.id == r.groupID }) {
				list = append(list, r)
			}
		case typeProject:
			if slices.Contains(r.projectIDs, p.id) {
				list = append(list, r)
			}
		}
	}
	s.respondRunnerList(c, list, runnerScopes, true)
}

// GET /groups/:id/runners: runners of the group and its ancestors, and instance
// runners. Needs Maintainer+ (docs). scope is not declared here, so it is ignored.
func (s *Server) listGroupRunners(c *call) {
	g := s.userGroup(c)
	if g == nil {
		return
	}
	if !c.user.admin && s.groupRole(c.user, g) < Maintainer {
		c.forbidden("")
		return
	}
	ancestors := s.ancestors(g)
	var list []*runner
	for _, r := range s.runners {
		switch r.typ {
		case typeInstance:
			list = append(list, r)
		case typeGroup:
			if slices.ContainsFunc(ancestors, func(a *group) bool { return a.id == r.groupID }) {
				list = append(list, r)
			}
		}
	}
	s.respondRunnerList(c, list, nil, false)
}
