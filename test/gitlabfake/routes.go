package gitlabfake

import (
	"net/http"
	"strings"
)

type authMode int

const (
	// authUser routes need a user access token.
	authUser authMode = iota
	// authRunner routes read the runner token from the token param instead.
	authRunner
)

type route struct {
	method  string
	pattern []string // ":name" segments are parameters
	auth    authMode
	// extraScopes are accepted besides api (and read_api on GET).
	extraScopes []string
	// since is the first release (major, minor) that has the route; zero: every release.
	since [2]int
	// owner is the variable owner kind: "project", "group" or "instance".
	owner  string
	handle func(*Server, *call)
}

// acceptedScopes lists the token scopes that may call this route with method.
func (rt *route) acceptedScopes(method string) []string {
	scopes := []string{"api"}
	if method == http.MethodGet || method == http.MethodHead {
		scopes = append(scopes, "read_api")
	}
	return append(scopes, rt.extraScopes...)
}

func endpoint(method, path string, h func(*Server, *call), opts ...func(*route)) route {
	rt := route{method: method, pattern: strings.Split(strings.Trim(path, "/"), "/"), handle: h}
	for _, o := range opts {
		o(&rt)
	}
	return rt
}

func runnerToken(rt *route)  { rt.auth = authRunner }
func createRunner(rt *route) { rt.extraScopes = append(rt.extraScopes, "create_runner") }
func manageRunner(rt *route) { rt.extraScopes = append(rt.extraScopes, "manage_runner") }
func readUser(rt *route)     { rt.extraScopes = append(rt.extraScopes, "read_user", "ai_features") }

// anyScope is for routes every token may call about itself (personal_access_tokens/self).
func anyScope(rt *route) {
	rt.extraScopes = append(rt.extraScopes, "read_api", "read_user", "read_repository", "write_repository",
		"read_registry", "write_registry", "sudo", "admin_mode", "create_runner", "manage_runner", "ai_features", "k8s_proxy", "self_rotate")
}
func since(major, minor int) func(*route) { return func(rt *route) { rt.since = [2]int{major, minor} } }
func ownedBy(kind string) func(*route) {
	return func(rt *route) { rt.owner = kind }
}

var routes = []route{
	endpoint("GET", "/metadata", (*Server).getMetadata, readUser),
	endpoint("GET", "/version", (*Server).getMetadata, readUser),
	endpoint("GET", "/user", (*Server).getCurrentUser, readUser),
	endpoint("GET", "/personal_access_tokens/self", (*Server).getTokenSelf, anyScope),
	endpoint("GET", "/projects/:id/members/all/:user_id", (*Server).getMemberAll, ownedBy("project")),
	endpoint("GET", "/groups/:id/members/all/:user_id", (*Server).getMemberAll, ownedBy("group")),

	endpoint("POST", "/user/runners", (*Server).createUserRunner, createRunner),

	endpoint("GET", "/runners", (*Server).listOwnedRunners),
	endpoint("GET", "/runners/all", (*Server).listAllRunners),
	endpoint("GET", "/runners/:id", (*Server).getRunner, manageRunner),
	endpoint("PUT", "/runners/:id", (*Server).updateRunner, manageRunner),
	endpoint("DELETE", "/runners/:id", (*Server).deleteRunner, manageRunner),
	endpoint("GET", "/runners/:id/managers", (*Server).listRunnerManagers, manageRunner, since(17, 1)),
	endpoint("POST", "/runners/:id/reset_authentication_token", (*Server).resetRunnerTokenByID, manageRunner),

	endpoint("POST", "/runners", (*Server).registerLegacyRunner, runnerToken),
	endpoint("POST", "/runners/verify", (*Server).verifyRunner, runnerToken),
	endpoint("POST", "/runners/reset_authentication_token", (*Server).resetRunnerTokenByToken, runnerToken),
	endpoint("DELETE", "/runners", (*Server).deleteRunnerByToken, runnerToken),
	endpoint("DELETE", "/runners/managers", (*Server).deleteRunnerManager, runnerToken),
	endpoint("POST", "/jobs/request", (*Server).requestJob, runnerToken),

	endpoint("GET", "/application/settings", (*Server).getApplicationSettings),

	endpoint("GET", "/projects/:id", (*Server).getProject),
	endpoint("GET", "/projects/:id/runners", (*Server).listProjectRunners),
	endpoint("GET", "/groups/:id", (*Server).getGroup),
	endpoint("GET", "/groups/:id/runners", (*Server).listGroupRunners),
	endpoint("GET", "/groups/:id/descendant_groups", (*Server).listDescendantGroups),
	endpoint("GET", "/groups/:id/projects", (*Server).listGroupProjects),

	endpoint("GET", "/projects/:id/variables", (*Server).listVariables, ownedBy("project")),
	endpoint("POST", "/projects/:id/variables", (*Server).createVariable, ownedBy("project")),
	endpoint("GET", "/projects/:id/variables/:key", (*Server).getVariable, ownedBy("project")),
	endpoint("PUT", "/projects/:id/variables/:key", (*Server).updateVariable, ownedBy("project")),
	endpoint("DELETE", "/projects/:id/variables/:key", (*Server).deleteVariable, ownedBy("project")),

	endpoint("GET", "/groups/:id/variables", (*Server).listVariables, ownedBy("group")),
	endpoint("POST", "/groups/:id/variables", (*Server).createVariable, ownedBy("group")),
	endpoint("GET", "/groups/:id/variables/:key", (*Server).getVariable, ownedBy("group")),
	endpoint("PUT", "/groups/:id/variables/:key", (*Server).updateVariable, ownedBy("group")),
	endpoint("DELETE", "/groups/:id/variables/:key", (*Server).deleteVariable, ownedBy("group")),

	endpoint("GET", "/admin/ci/variables", (*Server).listVariables, ownedBy("instance")),
	endpoint("POST", "/admin/ci/variables", (*Server).createVariable, ownedBy("instance")),
	endpoint("GET", "/admin/ci/variables/:key", (*Server).getVariable, ownedBy("instance")),
	endpoint("PUT", "/admin/ci/variables/:key", (*Server).updateVariable, ownedBy("instance")),
	endpoint("DELETE", "/admin/ci/variables/:key", (*Server).deleteVariable, ownedBy("instance")),
}

// matchRoute finds the route for method and path segments, preferring literal
// segments over parameters (so /runners/all is not /runners/:id). A known path
// with another method is an unknown route, as GitLab's catch-all route answers 404.
func matchRoute(method string, segs []string) (*route, []string) {
	var best *route
	var bestArgs []string
	bestScore := -1
	for i := range routes {
		rt := &routes[i]
		if rt.method != method || len(rt.pattern) != len(segs) {
			continue
		}
		score, ok := 0, true
		var args []string
		for j, p := range rt.pattern {
			if strings.HasPrefix(p, ":") {
				args = append(args, segs[j])
				continue
			}
			if p != segs[j] {
				ok = false
				break
			}
			score++
		}
		if ok && score > bestScore {
			best, bestArgs, bestScore = rt, args, score
		}
	}
	return best, bestArgs
}
