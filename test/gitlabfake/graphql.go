package gitlabfake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	graphql "github.com/graph-gophers/graphql-go"
)

// GitLab's GraphQL API (POST /api/graphql), for the runner fields runner-bootstrap reads.
// The names are GitLab's own (app/graphql/types/ci/runner_type.rb, runner_manager_type.rb,
// runner_creation_method_enum.rb, runner_status_enum.rb, runner_type_enum.rb,
// app/graphql/types/user_type.rb is 'UserCore', CountableConnectionType), and a real GraphQL
// engine validates each query against this schema, so a query with a misspelt field fails
// here as it does on GitLab: HTTP 200 with an "errors" list and no data.
const gitlabSchema = `
schema { query: Query }

scalar Time
scalar CiRunnerID
scalar CiRunnerManagerID
scalar UserID

type Query {
  "Find a runner."
  runner(id: CiRunnerID!): CiRunner
  "Get information about current user."
  currentUser: UserCore
}

enum CiRunnerType { INSTANCE_TYPE GROUP_TYPE PROJECT_TYPE }
enum CiRunnerStatus { ONLINE OFFLINE STALE NEVER_CONTACTED }
enum CiRunnerCreationMethod { REGISTRATION_TOKEN AUTHENTICATED_USER }
enum CiRunnerAccessLevel { NOT_PROTECTED REF_PROTECTED }

type CiRunner {
  id: CiRunnerID!
  description: String
  runnerType: CiRunnerType!
  status: CiRunnerStatus!
  paused: Boolean!
  locked: Boolean
  runUntagged: Boolean!
  accessLevel: CiRunnerAccessLevel!
  tagList: [String!]
  maximumTimeout: Int
  contactedAt: Time
  createdAt: Time
  creationMethod: CiRunnerCreationMethod
  createdBy: UserCore
  maintenanceNote: String
  tokenExpiresAt: Time
  managers(systemId: String, status: CiRunnerStatus, first: Int, after: String): CiRunnerManagerConnection
}

type CiRunnerManagerConnection {
  count: Int!
  nodes: [CiRunnerManager]
  pageInfo: PageInfo!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

type CiRunnerManager {
  id: CiRunnerManagerID!
  systemId: String!
  version: String
  revision: String
  platformName: String
  architectureName: String
  status: CiRunnerStatus!
  contactedAt: Time
  createdAt: Time
  ipAddress: String
  runner: CiRunner
}

type UserCore {
  id: UserID!
  username: String!
  name: String!
}
`

var (
	graphQLSchema = graphql.MustParseSchema(gitlabSchema, &gqlQuery{})
	// graphQLSchema16 is before 17.0, when CiRunner had no creationMethod yet.
	graphQLSchema16 = graphql.MustParseSchema(strings.Replace(gitlabSchema, "  creationMethod: CiRunnerCreationMethod\n", "", 1), &gqlQuery{})
)

// gqlRequest is the POST body: GitLab also takes operationName.
type gqlRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

// serveGraphQL handles POST /api/graphql: the same latency, rate limit and request log as the
// REST API, a user from the access token (none: anonymous), then the query under the lock.
func (s *Server) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	rec := Request{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Body: redactBody(body, r.Header.Get("Content-Type"))}
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if !s.sleep(r.Context(), latency) {
		s.record(rec)
		return
	}
	resp := s.handleGraphQL(r, body)
	rec.Status = resp.status
	s.record(rec)
	resp.write(w)
}

func (s *Server) handleGraphQL(r *http.Request, body []byte) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &call{s: s, r: r, resp: newResponse()}
	c.resp.header.Set("Date", s.now().Format(http.TimeFormat))
	if s.throttleCfg.Requests > 0 {
		if u := s.identify(r, body); u != nil && !s.throttle(c, u) {
			return c.resp
		}
	}
	if r.Method != http.MethodPost {
		// GitLab also serves queries over GET; the fake only knows POST.
		c.grapeError(http.StatusNotFound, "404 Not Found")
		return c.resp
	}
	var u *user
	if tok, job := credential(r, body); tok != "" || job {
		t := s.tokens[tok]
		// Stricter than unsure: any credential that is not a usable access token with a
		// GraphQL scope is refused rather than treated as anonymous.
		if job || t == nil || t.expired || t.revoked {
			c.resp.json(http.StatusUnauthorized, gqlErrors("Invalid token"))
			return c.resp
		}
		if !hasAnyScope(t.scopes, "api", "read_api") {
			c.resp.json(http.StatusForbidden, gqlErrors("Insufficient scope"))
			return c.resp
		}
		u = s.userByID(t.userID)
	}
	var req gqlRequest
	if err := json.Unmarshal(body, &req); err != nil || strings.TrimSpace(req.Query) == "" {
		c.resp.json(http.StatusOK, gqlErrors("No query string was present"))
		return c.resp
	}
	ctx := context.WithValue(r.Context(), gqlCtxKey{}, gqlCtx{s: s, u: u})
	schema := graphQLSchema
	if !s.release.at(17, 0) {
		schema = graphQLSchema16
	}
	c.resp.json(http.StatusOK, schema.Exec(ctx, req.Query, req.OperationName, req.Variables))
	return c.resp
}

func hasAnyScope(have []string, want ...string) bool {
	return slices.ContainsFunc(have, func(h string) bool { return slices.Contains(want, h) })
}

func gqlErrors(msg string) map[string]any {
	return map[string]any{"errors": []map[string]string{{"message": msg}}}
}

type gqlCtxKey struct{}

// gqlCtx is the server and user of one query; resolvers run while serveGraphQL holds the
// lock, so they read the world directly.
type gqlCtx struct {
	s *Server
	u *user
}

func fromCtx(ctx context.Context) gqlCtx { return ctx.Value(gqlCtxKey{}).(gqlCtx) }

// globalID is a GitLab GlobalID scalar ("gid://gitlab/Ci::Runner/1000"); one Go type serves
// the CiRunnerID, CiRunnerManagerID and UserID scalars.
type globalID string

var gidRE = regexp.MustCompile(`^gid://gitlab/([A-Za-z:]+)/([0-9]+)$`)

func (globalID) ImplementsGraphQLType(name string) bool {
	return name == "CiRunnerID" || name == "CiRunnerManagerID" || name == "UserID"
}

func (g *globalID) UnmarshalGraphQL(input any) error {
	s, ok := input.(string)
	if !ok || !gidRE.MatchString(s) {
		return fmt.Errorf("%v is not a valid Global ID", input)
	}
	*g = globalID(s)
	return nil
}

func (g globalID) MarshalJSON() ([]byte, error) { return json.Marshal(string(g)) }

func (g globalID) modelID(model string) (int64, bool) {
	m := gidRE.FindStringSubmatch(string(g))
	if m == nil || m[1] != model {
		return 0, false
	}
	id, err := strconv.ParseInt(m[2], 10, 64)
	return id, err == nil
}

type gqlQuery struct{}

// Runner is Query.runner: null when the runner does not exist or the user may not read it.
func (*gqlQuery) Runner(ctx context.Context, args struct{ ID globalID }) (*gqlRunner, error) {
	id, ok := args.ID.modelID("Ci::Runner")
	if !ok {
		return nil, fmt.Errorf("%s is not a valid ID for CiRunner", args.ID)
	}
	g := fromCtx(ctx)
	r := g.s.runnerByID(id)
	if r == nil || g.u == nil || !g.s.canReadRunner(g.u, r) {
		return nil, nil
	}
	return &gqlRunner{g: g, r: r}, nil
}

// CurrentUser is Query.currentUser.
func (*gqlQuery) CurrentUser(ctx context.Context) *gqlUser {
	g := fromCtx(ctx)
	if g.u == nil {
		return nil
	}
	return &gqlUser{g.u}
}

type gqlUser struct{ u *user }

func (u *gqlUser) ID() globalID     { return globalID(fmt.Sprintf("gid://gitlab/User/%d", u.u.id)) }
func (u *gqlUser) Username() string { return u.u.username }
func (u *gqlUser) Name() string     { return u.u.username }

type gqlRunner struct {
	g gqlCtx
	r *runner
}

func gqlTime(t *time.Time) *graphql.Time {
	if t == nil {
		return nil
	}
	return &graphql.Time{Time: *t}
}

func (x *gqlRunner) ID() globalID { return globalID(fmt.Sprintf("gid://gitlab/Ci::Runner/%d", x.r.id)) }
func (x *gqlRunner) Description() *string {
	return strPtrOrNil(x.r.description)
}
func (x *gqlRunner) RunnerType() string         { return strings.ToUpper(x.r.typ) }
func (x *gqlRunner) Paused() bool               { return x.r.paused }
func (x *gqlRunner) Locked() *bool              { return &x.r.locked }
func (x *gqlRunner) RunUntagged() bool          { return x.r.runUntagged }
func (x *gqlRunner) AccessLevel() string        { return strings.ToUpper(x.r.accessLevel) }
func (x *gqlRunner) TagList() *[]string         { t := append([]string{}, x.r.tags...); return &t }
func (x *gqlRunner) ContactedAt() *graphql.Time { return gqlTime(x.r.contactedAt) }
func (x *gqlRunner) CreatedAt() *graphql.Time   { return gqlTime(&x.r.createdAt) }

// Status is the GraphQL status, which unlike REST has no "paused".
func (x *gqlRunner) Status() string {
	switch {
	case x.g.s.stale(x.r):
		return "STALE"
	case x.r.contactedAt == nil:
		return "NEVER_CONTACTED"
	case x.g.s.online(x.r):
		return "ONLINE"
	}
	return "OFFLINE"
}

func (x *gqlRunner) MaximumTimeout() *int32 {
	if x.r.maximumTimeout == nil {
		return nil
	}
	v := int32(*x.r.maximumTimeout)
	return &v
}

// CreationMethod is registration_type.
func (x *gqlRunner) CreationMethod() *string {
	if x.r.registrationType == "" {
		return nil
	}
	v := strings.ToUpper(x.r.registrationType)
	return &v
}

// CreatedBy is the creator; null for runners registered with a registration token.
func (x *gqlRunner) CreatedBy() *gqlUser {
	if u := x.g.s.userByID(x.r.creatorID); u != nil {
		return &gqlUser{u}
	}
	return nil
}

// MaintenanceNote needs update_runner, as in GitLab.
func (x *gqlRunner) MaintenanceNote() *string {
	if !x.g.s.canUpdateRunner(x.g.u, x.r) {
		return nil
	}
	return strPtrOrNil(x.r.maintenanceNote)
}

// TokenExpiresAt needs read_runner_sensitive_data (update rights).
func (x *gqlRunner) TokenExpiresAt() *graphql.Time {
	if !x.g.s.canUpdateRunner(x.g.u, x.r) {
		return nil
	}
	return gqlTime(x.r.tokenExpiresAt)
}

type managersArgs struct {
	SystemID *string
	Status   *string
	First    *int32
	After    *string
}

// Managers is the runner's managers connection (one page: no runner has 100).
func (x *gqlRunner) Managers(args managersArgs) *gqlManagers {
	out := &gqlManagers{}
	for _, m := range x.r.managers {
		gm := &gqlManager{g: x.g, m: m, r: x.r}
		if args.SystemID != nil && *args.SystemID != m.systemID {
			continue
		}
		if args.Status != nil && *args.Status != gm.Status() {
			continue
		}
		out.nodes = append(out.nodes, gm)
	}
	return out
}

type gqlManagers struct{ nodes []*gqlManager }

func (c *gqlManagers) Count() int32           { return int32(len(c.nodes)) }
func (c *gqlManagers) Nodes() *[]*gqlManager  { n := c.nodes; return &n }
func (c *gqlManagers) PageInfo() *gqlPageInfo { return &gqlPageInfo{} }

type gqlPageInfo struct{}

func (*gqlPageInfo) HasNextPage() bool     { return false }
func (*gqlPageInfo) HasPreviousPage() bool { return false }
func (*gqlPageInfo) StartCursor() *string  { return nil }
func (*gqlPageInfo) EndCursor() *string    { return nil }

type gqlManager struct {
	g gqlCtx
	m *manager
	r *runner
}

func (x *gqlManager) ID() globalID {
	return globalID(fmt.Sprintf("gid://gitlab/Ci::RunnerManager/%d", x.m.id))
}
func (x *gqlManager) SystemID() string           { return x.m.systemID }
func (x *gqlManager) Version() *string           { return strPtrOrNil(x.m.version) }
func (x *gqlManager) Revision() *string          { return strPtrOrNil(x.m.revision) }
func (x *gqlManager) PlatformName() *string      { return strPtrOrNil(x.m.platform) }
func (x *gqlManager) ArchitectureName() *string  { return strPtrOrNil(x.m.architecture) }
func (x *gqlManager) IPAddress() *string         { return nil }
func (x *gqlManager) ContactedAt() *graphql.Time { return gqlTime(&x.m.contactedAt) }
func (x *gqlManager) CreatedAt() *graphql.Time   { return gqlTime(&x.m.createdAt) }
func (x *gqlManager) Status() string             { return strings.ToUpper(x.g.s.managerStatus(x.m)) }
func (x *gqlManager) Runner() *gqlRunner         { return &gqlRunner{g: x.g, r: x.r} }
