package gitlabfake

import (
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const (
	expiredDescription = "Token is expired. You can either do re-authorization or token refresh."
	revokedDescription = "Token was revoked. You have to re-authorize from the user."
	scopeDescription   = "The request requires higher privileges than provided by the access token."
)

// handleAPI routes, authenticates and runs one API request under the lock.
func (s *Server) handleAPI(r *http.Request, body []byte, segs []string) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &call{s: s, r: r, resp: newResponse()}
	// The server's own clock, as GitLab's Date says it; RateLimit-Reset is on that clock too.
	c.resp.header.Set("Date", s.now().Format(http.TimeFormat))

	// Rack::Attack runs before the API, so a throttled request never reaches it.
	if s.throttleCfg.Requests > 0 {
		if u := s.identify(r, body); u != nil && !s.throttle(c, u) {
			return c.resp
		}
	}

	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	rt, args := matchRoute(method, segs)
	if rt != nil && !s.routeExists(rt) {
		rt = nil
	}
	if rt == nil {
		c.grapeError(http.StatusNotFound, "404 Not Found")
		return c.resp
	}
	c.args = args
	c.route = rt
	if rt.auth == authUser && !s.authenticate(c, rt, body) {
		return c.resp
	}
	p, err := parseParams(r, body)
	if err != nil {
		c.grapeError(http.StatusBadRequest, err.Error())
		return c.resp
	}
	c.p = p
	rt.handle(s, c)
	if c.resp.status >= 200 && c.resp.status < 300 && method != http.MethodGet {
		s.writes++
	}
	return c.resp
}

// credential finds the user credential of a request, and whether a CI job token
// was offered.
func credential(r *http.Request, body []byte) (token string, jobToken bool) {
	q := r.URL.Query()
	form := formBody(r, body)
	if r.Header.Get("Job-Token") != "" || q.Get("job_token") != "" || form.Get("job_token") != "" {
		jobToken = true
	}
	if t := r.Header.Get("Private-Token"); t != "" {
		return t, jobToken
	}
	if t := firstNonEmpty(q.Get("private_token"), form.Get("private_token")); t != "" {
		return t, jobToken
	}
	if a := r.Header.Get("Authorization"); len(a) > len("bearer ") && strings.EqualFold(a[:len("bearer ")], "bearer ") {
		t := strings.TrimSpace(a[len("bearer "):])
		if strings.HasPrefix(t, "glcbt-") {
			return "", true
		}
		return t, jobToken
	}
	return firstNonEmpty(q.Get("access_token"), form.Get("access_token")), jobToken
}

func formBody(r *http.Request, body []byte) url.Values {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return url.Values{}
	}
	v, _ := url.ParseQuery(string(body))
	return v
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// identify returns the user behind a usable token, for the rate limiter.
func (s *Server) identify(r *http.Request, body []byte) *user {
	tok, job := credential(r, body)
	if job || tok == "" {
		return nil
	}
	t := s.tokens[tok]
	if t == nil || t.expired || t.revoked {
		return nil
	}
	return s.userByID(t.userID)
}

// authenticate is the API guard: find the user from the token, then check scopes.
func (s *Server) authenticate(c *call, rt *route, body []byte) bool {
	tok, job := credential(c.r, body)
	// Stricter: a job token makes the request fail even if a PAT is also present.
	// None of these routes allows job tokens, so a job token alone is 401 either way.
	if job || tok == "" {
		c.message(http.StatusUnauthorized, "401 Unauthorized")
		return false
	}
	t := s.tokens[tok]
	if t == nil {
		// Unknown tokens, including glrt- runner tokens, are just not user credentials.
		c.message(http.StatusUnauthorized, "401 Unauthorized")
		return false
	}
	// AccessTokenValidationService checks expiry, then revocation, then scopes.
	switch {
	case t.expired:
		c.invalidToken(expiredDescription)
		return false
	case t.revoked:
		c.invalidToken(revokedDescription)
		return false
	}
	accepted := slices.DeleteFunc(rt.acceptedScopes(c.r.Method), func(sc string) bool { return !s.scopeExists(sc) })
	if !slices.ContainsFunc(t.scopes, func(sc string) bool { return slices.Contains(accepted, sc) }) {
		scope := strings.Join(accepted, " ")
		c.resp.header.Set("WWW-Authenticate", `Bearer realm="The API", error="insufficient_scope", error_description="`+scopeDescription+`", scope="`+scope+`"`)
		c.resp.json(http.StatusForbidden, struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
			Scope            string `json:"scope"`
		}{"insufficient_scope", scopeDescription, scope})
		return false
	}
	c.user = s.userByID(t.userID)
	c.token = t
	return true
}

func (c *call) invalidToken(description string) {
	c.resp.header.Set("WWW-Authenticate", `Bearer realm="The API", error="invalid_token", error_description="`+description+`"`)
	c.resp.json(http.StatusUnauthorized, struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}{"invalid_token", description})
}
