package gitlab

import (
	"context"
	"strconv"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// Namespace is a resolved project or group.
type Namespace struct {
	ID       int64
	FullPath string
}

// ResolveProject looks a project up by numeric id or full path.
func (c *Client) ResolveProject(ctx context.Context, ref string) (Namespace, error) {
	o := op{action: "look up project " + ref, object: "project " + ref, role: "access to the project"}
	p, _, err := c.gl.Projects.GetProject(refArg(ref), nil, c.idem(ctx)...)
	if err != nil {
		return Namespace{}, wrap(ctx, o, err)
	}
	if p.ID == 0 {
		return Namespace{}, missingID(o, "project")
	}
	return Namespace{ID: p.ID, FullPath: p.PathWithNamespace}, nil
}

// ResolveGroup looks a group up by numeric id or full path.
func (c *Client) ResolveGroup(ctx context.Context, ref string) (Namespace, error) {
	o := op{action: "look up group " + ref, object: "group " + ref, role: "access to the group"}
	g, _, err := c.gl.Groups.GetGroup(refArg(ref), &gl.GetGroupOptions{WithProjects: new(false)}, c.idem(ctx)...)
	if err != nil {
		return Namespace{}, wrap(ctx, o, err)
	}
	if g.ID == 0 {
		return Namespace{}, missingID(o, "group")
	}
	return Namespace{ID: g.ID, FullPath: g.FullPath}, nil
}

// refArg passes numeric ids as numbers and paths as strings (client-go escapes them).
func refArg(ref string) any {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return id
	}
	return ref
}

// ListDescendants lists a group's subgroups (all levels) and the projects in the group and
// its subgroups; not projects shared into them from elsewhere (GitLab includes those by default).
func (c *Client) ListDescendants(ctx context.Context, groupID int64) (groups, projects []Namespace, err error) {
	o := op{action: "list the subgroups and projects of group " + idString(groupID), object: "group " + idString(groupID), role: "access to the group"}
	lo := gl.ListOptions{PerPage: 100, Page: 1}
	for {
		gs, resp, err := c.gl.Groups.ListDescendantGroups(groupID, &gl.ListDescendantGroupsOptions{ListOptions: lo}, c.idem(ctx)...)
		if err != nil {
			return nil, nil, wrap(ctx, o, err)
		}
		for _, g := range gs {
			groups = append(groups, Namespace{ID: g.ID, FullPath: g.FullPath})
		}
		if resp == nil || resp.NextPage == 0 {
			break
		}
		lo.Page = resp.NextPage
	}
	projects, err = c.listGroupProjects(ctx, groupID, true)
	return groups, projects, err
}

func (c *Client) listGroupProjects(ctx context.Context, groupID int64, includeSubgroups bool) ([]Namespace, error) {
	o := op{action: "list the projects of group " + idString(groupID), object: "group " + idString(groupID), role: "access to the group"}
	var projects []Namespace
	lo := gl.ListOptions{PerPage: 100, Page: 1}
	for {
		ps, resp, err := c.gl.Groups.ListGroupProjects(groupID, &gl.ListGroupProjectsOptions{ListOptions: lo, IncludeSubGroups: new(includeSubgroups), Simple: new(true), WithShared: new(false)}, c.idem(ctx)...)
		if err != nil {
			return nil, wrap(ctx, o, err)
		}
		for _, p := range ps {
			projects = append(projects, Namespace{ID: p.ID, FullPath: p.PathWithNamespace})
		}
		if resp == nil || resp.NextPage == 0 {
			return projects, nil
		}
		lo.Page = resp.NextPage
	}
}
