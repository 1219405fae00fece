package gitlab

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// RunnerOrigin is how a runner came to be, as GitLab's GraphQL API tells it (CiRunner
// creationMethod, createdBy, createdAt, managers). REST tells none of it on 16.x–18.x.
type RunnerOrigin struct {
	// CreationMethod is registration_token or authenticated_user; "" when GitLab did not say.
	CreationMethod string
	// CreatedBy is the creator's username ("" for runners registered with a registration token).
	CreatedBy string
	CreatedAt *time.Time
	// Managers are the hosts or pods using the runner's token.
	Managers []Manager
}

// runnerOriginBatch is how many runners one GraphQL query asks for: GitLab caps a query's
// complexity (a few hundred points for a user), and each runner with its managers costs some.
const runnerOriginBatch = 20

// runnerOriginFields are GitLab's own CiRunner field names; a wrong one fails the query.
// creationMethod is asked only where it exists (17.0+), since an unknown field fails it all.
const runnerOriginFields = `id %screatedAt createdBy { username }
    managers { nodes { systemId status version platformName contactedAt createdAt } }`

type gqlManager struct {
	SystemID     string     `json:"systemId"`
	Status       string     `json:"status"`
	Version      string     `json:"version"`
	PlatformName string     `json:"platformName"`
	ContactedAt  *time.Time `json:"contactedAt"`
	CreatedAt    *time.Time `json:"createdAt"`
}

type gqlRunner struct {
	ID             string     `json:"id"`
	CreationMethod string     `json:"creationMethod"`
	CreatedAt      *time.Time `json:"createdAt"`
	CreatedBy      *struct {
		Username string `json:"username"`
	} `json:"createdBy"`
	Managers *struct {
		Nodes []gqlManager `json:"nodes"`
	} `json:"managers"`
}

// RunnerOrigins asks GitLab's GraphQL API (POST /api/graphql) how each runner was created,
// by whom, and which managers use it, runnerOriginBatch runners per query. Runners GitLab
// does not show to the token's user are missing from the map.
func (c *Client) RunnerOrigins(ctx context.Context, ids []int64) (map[int64]RunnerOrigin, error) {
	out := make(map[int64]RunnerOrigin, len(ids))
	fields := fmt.Sprintf(runnerOriginFields, "creationMethod ")
	if srv, err := c.Server(ctx); err == nil && !srv.Has(CapRunnerCreationMethod) {
		fields = fmt.Sprintf(runnerOriginFields, "")
	}
	for start := 0; start < len(ids); start += runnerOriginBatch {
		batch := ids[start:min(start+runnerOriginBatch, len(ids))]
		if err := c.runnerOriginBatch(ctx, batch, fields, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (c *Client) runnerOriginBatch(ctx context.Context, ids []int64, fields string, out map[int64]RunnerOrigin) error {
	var q strings.Builder
	vars := map[string]any{}
	params := make([]string, 0, len(ids))
	for i, id := range ids {
		params = append(params, fmt.Sprintf("$r%d: CiRunnerID!", i))
		vars[fmt.Sprintf("r%d", i)] = fmt.Sprintf("gid://gitlab/Ci::Runner/%d", id)
	}
	fmt.Fprintf(&q, "query runnerOrigins(%s) {\n", strings.Join(params, ", "))
	for i := range ids {
		fmt.Fprintf(&q, "  r%d: runner(id: $r%d) { %s }\n", i, i, fields)
	}
	q.WriteString("}")
	var resp struct {
		Data   map[string]*gqlRunner `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	action := "ask GitLab's GraphQL API how runners were created"
	// A query is a read, so it is retried like a GET.
	if _, err := c.gl.GraphQL.Do(gl.GraphQLQuery{Query: q.String(), Variables: vars}, &resp, c.idem(ctx)...); err != nil {
		return wrap(ctx, op{action: action, object: "the GraphQL API (/api/graphql)", role: "the api or read_api scope"}, unwrapGraphQL(err))
	}
	if len(resp.Errors) > 0 {
		return fmt.Errorf("cannot %s: GitLab answered %q", action, firstSentence(resp.Errors[0].Message))
	}
	for _, r := range resp.Data {
		if r == nil {
			continue
		}
		id, err := strconv.ParseInt(r.ID[strings.LastIndex(r.ID, "/")+1:], 10, 64)
		if err != nil {
			continue
		}
		o := RunnerOrigin{CreationMethod: strings.ToLower(r.CreationMethod), CreatedAt: r.CreatedAt, Managers: []Manager{}}
		if r.CreatedBy != nil {
			o.CreatedBy = r.CreatedBy.Username
		}
		if r.Managers != nil {
			for _, m := range r.Managers.Nodes {
				o.Managers = append(o.Managers, Manager{SystemID: m.SystemID, Status: strings.ToLower(m.Status), Version: m.Version, Platform: m.PlatformName, ContactedAt: m.ContactedAt, CreatedAt: m.CreatedAt})
			}
		}
		out[id] = o
	}
	return nil
}

// unwrapGraphQL gives wrap the client-go error underneath GraphQL.Do's own wrapping, so a
// 401, 403 or 404 reads like every other call's.
func unwrapGraphQL(err error) error {
	var ge *gl.GraphQLResponseError
	if errors.As(err, &ge) && ge.Err != nil {
		return ge.Err
	}
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}
