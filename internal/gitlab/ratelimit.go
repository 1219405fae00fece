package gitlab

import (
	"context"
	"net/http"
	"strconv"
)

// RateLimit returns the requests per minute GitLab allows this token's user, as its
// RateLimit-Limit header announces (0 when the instance announces none). It costs one
// request (GET /user); any answer carries the header, so a 401, 403 or 404 is not an error
// here. Callers that split work across processes sharing one user's budget (fleet shards)
// use it to pace themselves: client-go's own limiter assumes it has the budget to itself.
func (c *Client) RateLimit(ctx context.Context) (int, error) {
	req, err := c.gl.NewRequest(http.MethodGet, "user", nil, c.idem(ctx))
	if err != nil {
		return 0, err
	}
	resp, err := c.gl.Do(req, nil)
	if resp == nil || resp.Response == nil {
		if err == nil {
			return 0, nil
		}
		return 0, wrap(ctx, op{action: "read the rate limit", object: "the current user"}, err)
	}
	n, _ := strconv.Atoi(resp.Header.Get("RateLimit-Limit"))
	return max(n, 0), nil
}
