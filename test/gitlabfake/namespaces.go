package gitlabfake

import (
	"encoding/json"
	"net/http"
	"strings"
)

// userProject resolves :id (numeric or URL-encoded full path). An unknown project
// and one the user cannot see are both 404, never 403.
func (s *Server) userProject(c *call) *project {
	p := s.projectByRef(c.args[0])
	if p == nil || !s.canSeeProject(c.user, p) {
		c.notFound("Project")
		return nil
	}
	return p
}

func (s *Server) userGroup(c *call) *group {
	g := s.groupByRef(c.args[0])
	if g == nil || !s.canSeeGroup(c.user, g) {
		c.notFound("Group")
		return nil
	}
	return g
}

// fullName turns "a/b/c" into GitLab's "a / b / c" (names equal paths here).
func (s *Server) fullName(fullPath string) string {
	return strings.ReplaceAll(fullPath, "/", " / ")
}

type namespaceJSON struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Path     string `json:"path"`
	Kind     string `json:"kind"`
	FullPath string `json:"full_path"`
	ParentID *int64 `json:"parent_id"`
	WebURL   string `json:"web_url"`
}

type projectJSON struct {
	ID                int64         `json:"id"`
	Description       *string       `json:"description"`
	Name              string        `json:"name"`
	NameWithNamespace string        `json:"name_with_namespace"`
	Path              string        `json:"path"`
	PathWithNamespace string        `json:"path_with_namespace"`
	DefaultBranch     string        `json:"default_branch"`
	Visibility        string        `json:"visibility"`
	WebURL            string        `json:"web_url"`
	Namespace         namespaceJSON `json:"namespace"`
	// RunnersToken is omitted unless the user may see it, and null when disallowed.
	RunnersToken optionalString `json:"runners_token,omitzero"`
}

// optionalString is a JSON string that can be absent (zero), null or a value.
type optionalString struct {
	set   bool
	value *string
}

func (o optionalString) IsZero() bool { return !o.set }

func (o optionalString) MarshalJSON() ([]byte, error) { return json.Marshal(o.value) }

type groupJSON struct {
	ID          int64  `json:"id"`
	WebURL      string `json:"web_url"`
	Name        string `json:"name"`
	Path        string `json:"path"`
	Description string `json:"description"`
	Visibility  string `json:"visibility"`
	FullName    string `json:"full_name"`
	FullPath    string `json:"full_path"`
	ParentID    *int64 `json:"parent_id"`
	// RunnersToken is omitted unless the user owns the group, and null when disallowed.
	RunnersToken optionalString `json:"runners_token,omitzero"`
}

func (s *Server) namespaceEntity(c *call, g *group) namespaceJSON {
	var parent *int64
	if g.parentID != 0 {
		id := g.parentID
		parent = &id
	}
	return namespaceJSON{ID: g.id, Name: g.path, Path: g.path, Kind: "group", FullPath: g.fullPath, ParentID: parent, WebURL: c.base() + "/groups/" + g.fullPath}
}

// GET /projects/:id
func (s *Server) getProject(c *call) {
	p := s.userProject(c)
	if p == nil {
		return
	}
	c.resp.json(http.StatusOK, projectJSON{
		ID:                p.id,
		Name:              p.path,
		NameWithNamespace: s.fullName(p.fullPath),
		Path:              p.path,
		PathWithNamespace: p.fullPath,
		DefaultBranch:     "main",
		Visibility:        "private",
		WebURL:            c.base() + "/" + p.fullPath,
		Namespace:         s.namespaceEntity(c, s.groupByID(p.groupID)),
		RunnersToken:      optional(s.projectRunnersToken(c.user, p)),
	})
}

// GET /groups/:id
func (s *Server) getGroup(c *call) {
	g := s.userGroup(c)
	if g == nil {
		return
	}
	ns := s.namespaceEntity(c, g)
	c.resp.json(http.StatusOK, groupJSON{
		ID:           g.id,
		WebURL:       ns.WebURL,
		Name:         g.path,
		Path:         g.path,
		Visibility:   "private",
		FullName:     s.fullName(g.fullPath),
		FullPath:     g.fullPath,
		ParentID:     ns.ParentID,
		RunnersToken: optional(s.groupRunnersToken(c.user, g)),
	})
}

func optional(v *string, set bool) optionalString { return optionalString{set: set, value: v} }
