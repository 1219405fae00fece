package gitlabfake

import (
	"net/http"
)

// The runner-facing endpoints authenticate with the runner's own token, read from
// the token param (body or query). An unknown or expired token is 403.

// authenticateRunner is GitLab's declared params plus authenticate_runner!: it validates the
// token and the endpoint's own params (params, may be nil) with Grape's 400, then finds the
// runner by its token (403 when unknown or expired). A nil runner means the answer is written.
func (s *Server) authenticateRunner(c *call, params func(*validator)) *runner {
	v := &validator{p: c.p}
	tok, _ := v.requireStr("token")
	if params != nil {
		params(v)
	}
	if v.failed() {
		c.grapeError(http.StatusBadRequest, v.message())
		return nil
	}
	r := s.runnerByToken(tok)
	if r == nil {
		c.forbidden("")
	}
	return r
}

// POST /runners/verify
func (s *Server) verifyRunner(c *call) {
	var systemID string
	r := s.authenticateRunner(c, func(v *validator) {
		// The docs call system_id required for glrt- tokens; the code does not enforce it.
		systemID, _ = v.str("system_id")
	})
	if r == nil {
		return
	}
	info, _ := c.p["info"].(map[string]any)
	s.heartbeat(r, systemID, info)
	c.resp.json(http.StatusOK, tokenJSON{ID: r.id, Token: r.token, TokenExpiresAt: timePtrJSON(r.tokenExpiresAt)})
}

// POST /runners/reset_authentication_token
func (s *Server) resetRunnerTokenByToken(c *call) {
	r := s.authenticateRunner(c, nil)
	if r == nil {
		return
	}
	if r.rotationDeadline != nil && !r.rotationDeadline.After(s.now()) {
		c.badRequest("Token rotation deadline has passed")
		return
	}
	s.resetToken(r)
	c.resp.json(http.StatusCreated, resetTokenJSON{Token: r.token, TokenExpiresAt: timePtrJSON(r.tokenExpiresAt)})
}

// DELETE /runners deletes the runner (and all its managers) by its token.
func (s *Server) deleteRunnerByToken(c *call) {
	r := s.authenticateRunner(c, nil)
	if r == nil {
		return
	}
	s.removeRunner(r.id)
	c.noContent()
}

// DELETE /runners/managers deletes one manager by token and system_id.
func (s *Server) deleteRunnerManager(c *call) {
	var systemID string
	r := s.authenticateRunner(c, func(v *validator) { systemID, _ = v.requireStr("system_id") })
	if r == nil {
		return
	}
	for i, m := range r.managers {
		if m.systemID == systemID {
			r.managers = append(r.managers[:i:i], r.managers[i+1:]...)
			c.noContent()
			return
		}
	}
	// not_found!('Runner manager not found') really does produce this text.
	c.notFound("Runner manager not found")
}
