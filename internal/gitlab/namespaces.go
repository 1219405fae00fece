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
	p, _, err := c.gl.Projects.GetProject(refArg(ref), nil, reqOpts(ctx))
	if err != nil {
		return Namespace{}, wrap(op{action: "look up project " + ref, object: "project " + ref, role: "access to the project"}, err)
	}
	return Namespace{ID: p.ID, FullPath: p.PathWithNamespace}, nil
}

// ResolveGroup looks a group up by numeric id or full path.
func (c *Client) ResolveGroup(ctx context.Context, ref string) (Namespace, error) {
	g, _, err := c.gl.Groups.GetGroup(refArg(ref), &gl.GetGroupOptions{WithProjects: ptr(false)}, reqOpts(ctx))
	if err != nil {
		return Namespace{}, wrap(op{action: "look up group " + ref, object: "group " + ref, role: "access to the group"}, err)
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
