package gitlabfake

import (
	"net/http"
	"strings"
)

// isDescendant reports whether d is below g in the group tree.
func isDescendant(d, g *group) bool {
	return strings.HasPrefix(d.fullPath, g.fullPath+"/")
}

// GET /groups/:id/descendant_groups: every subgroup, all levels, the user can see.
func (s *Server) listDescendantGroups(c *call) {
	g := s.userGroup(c)
	if g == nil {
		return
	}
	v := &validator{p: c.p}
	pg := v.pagination()
	var out []groupJSON
	for _, d := range s.groups {
		if !isDescendant(d, g) || !s.canSeeGroup(c.user, d) {
			continue
		}
		ns := s.namespaceEntity(c, d)
		out = append(out, groupJSON{ID: d.id, WebURL: ns.WebURL, Name: d.path, Path: d.path, Visibility: "private", FullName: s.fullName(d.fullPath), FullPath: d.fullPath, ParentID: ns.ParentID})
	}
	c.resp.json(http.StatusOK, paginate(c, pg, out))
}

// GET /groups/:id/projects: the group's projects; with include_subgroups=true also those of
// every subgroup.
func (s *Server) listGroupProjects(c *call) {
	g := s.userGroup(c)
	if g == nil {
		return
	}
	v := &validator{p: c.p}
	pg := v.pagination()
	sub := v.boolean("include_subgroups")
	if v.failed() {
		c.grapeError(http.StatusBadRequest, v.message())
		return
	}
	var out []projectJSON
	for _, p := range s.projects {
		ns := s.groupByID(p.groupID)
		if ns == nil || !(ns.id == g.id || (sub != nil && *sub && isDescendant(ns, g))) || !s.canSeeProject(c.user, p) {
			continue
		}
		out = append(out, projectJSON{ID: p.id, Name: p.path, NameWithNamespace: s.fullName(p.fullPath), Path: p.path, PathWithNamespace: p.fullPath, DefaultBranch: "main", Visibility: "private", WebURL: c.base() + "/" + p.fullPath, Namespace: s.namespaceEntity(c, ns)})
	}
	c.resp.json(http.StatusOK, paginate(c, pg, out))
}
