package gitlabfake

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/url"
	"slices"
	"time"
)

// Runner is a deep copy of a stored runner, token included.
type Runner struct {
	ID              int64      `json:"id"`
	Type            string     `json:"type"` // instance_type, group_type or project_type
	ProjectIDs      []int64    `json:"project_ids"`
	GroupID         int64      `json:"group_id"`
	Description     string     `json:"description"`
	MaintenanceNote string     `json:"maintenance_note"`
	AccessLevel     string     `json:"access_level"`
	TagList         []string   `json:"tag_list"`
	RunUntagged     bool       `json:"run_untagged"`
	Locked          bool       `json:"locked"`
	Paused          bool       `json:"paused"`
	MaximumTimeout  int64      `json:"maximum_timeout"` // 0 means null
	Token           string     `json:"token"`
	TokenExpiresAt  *time.Time `json:"token_expires_at"`
	CreatedAt       time.Time  `json:"created_at"`
	ContactedAt     *time.Time `json:"contacted_at"`
	CreatorID       int64      `json:"creator_id"`
	Managers        []Manager  `json:"managers"`
}

// Manager is a runner manager: one gitlab-runner process (system_id) using the token.
type Manager struct {
	ID          int64     `json:"id"`
	SystemID    string    `json:"system_id"`
	CreatedAt   time.Time `json:"created_at"`
	ContactedAt time.Time `json:"contacted_at"`
}

// Variable is a deep copy of a stored CI/CD variable, value included even if hidden.
type Variable struct {
	Owner            string `json:"owner"` // project, group or instance
	OwnerID          int64  `json:"owner_id"`
	Key              string `json:"key"`
	Value            string `json:"value"`
	EnvironmentScope string `json:"environment_scope"` // "*" for instance variables
	Description      string `json:"description"`
	VariableType     string `json:"variable_type"`
	Protected        bool   `json:"protected"`
	Masked           bool   `json:"masked"`
	Hidden           bool   `json:"hidden"`
	Raw              bool   `json:"raw"`
}

// State is everything a test may want to compare after a run.
type State struct {
	Runners   []Runner   `json:"runners"`
	Variables []Variable `json:"variables"`
}

// Request is one API request as the fake saw it. Credentials and "token" and
// "value" params are redacted from Query and Body.
type Request struct {
	Method  string `json:"method"`
	Path    string `json:"path"`     // unescaped, e.g. /api/v4/projects/platform/deploy/variables/KEY
	RawPath string `json:"raw_path"` // as sent, e.g. /api/v4/projects/platform%2Fdeploy/variables/KEY
	Query   string `json:"query,omitempty"`
	Body    string `json:"body,omitempty"`
	Status  int    `json:"status"` // 0 when the connection was dropped or the client gave up
	// Start is when the request arrived and End when its answer was ready (or it was given
	// up): tests group requests in flight together into round trips.
	Start time.Time `json:"-"`
	End   time.Time `json:"-"`
}

func exportRunner(r *runner) Runner {
	out := Runner{
		ID:              r.id,
		Type:            r.typ,
		ProjectIDs:      slices.Clone(r.projectIDs),
		GroupID:         r.groupID,
		Description:     r.description,
		MaintenanceNote: r.maintenanceNote,
		AccessLevel:     r.accessLevel,
		TagList:         append([]string{}, r.tags...),
		RunUntagged:     r.runUntagged,
		Locked:          r.locked,
		Paused:          r.paused,
		Token:           r.token,
		CreatedAt:       r.createdAt,
		CreatorID:       r.creatorID,
		Managers:        []Manager{},
	}
	if r.maximumTimeout != nil {
		out.MaximumTimeout = *r.maximumTimeout
	}
	if r.tokenExpiresAt != nil {
		t := *r.tokenExpiresAt
		out.TokenExpiresAt = &t
	}
	if r.contactedAt != nil {
		t := *r.contactedAt
		out.ContactedAt = &t
	}
	for _, m := range r.managers {
		out.Managers = append(out.Managers, Manager{ID: m.id, SystemID: m.systemID, CreatedAt: m.createdAt, ContactedAt: m.contactedAt})
	}
	return out
}

func exportVariable(v *variable) Variable {
	out := Variable{
		Owner:            v.owner,
		OwnerID:          v.ownerID,
		Key:              v.key,
		Value:            v.value,
		EnvironmentScope: v.scope,
		VariableType:     v.varType,
		Protected:        v.protected,
		Masked:           v.masked,
		Hidden:           v.hidden,
		Raw:              v.raw,
	}
	if v.owner == ownerInstance {
		out.EnvironmentScope = "*"
	}
	if v.description != nil {
		out.Description = *v.description
	}
	return out
}

// Runners returns all runners, ordered by id.
func (s *Server) Runners() []Runner {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Runner{}
	for _, r := range s.runners {
		out = append(out, exportRunner(r))
	}
	return out
}

// Runner returns one runner.
func (s *Server) Runner(id int64) (Runner, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.runnerByID(id)
	if r == nil {
		return Runner{}, false
	}
	return exportRunner(r), true
}

// Variables returns all variables in creation order.
func (s *Server) Variables() []Variable {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Variable{}
	for _, v := range s.variables {
		out = append(out, exportVariable(v))
	}
	return out
}

// Variable returns one variable. For instance variables use ownerID 0 and scope "*".
func (s *Server) Variable(owner string, ownerID int64, key, scope string) (Variable, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.variables {
		if v.owner == owner && v.ownerID == ownerID && v.key == key && (owner == ownerInstance || v.scope == scope) {
			return exportVariable(v), true
		}
	}
	return Variable{}, false
}

// State returns all runners and variables.
func (s *Server) State() State {
	return State{Runners: s.Runners(), Variables: s.Variables()}
}

// Requests returns the API requests seen since the last ResetRequests.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request{}, s.requests...)
}

// ResetRequests forgets the recorded requests and the Writes count.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.writes = 0
}

// Writes counts non-GET API requests that reached a handler and succeeded (2xx),
// including ones whose response a DropAfterAct fault then threw away.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *Server) record(r Request) {
	r.End = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
}

var redactedParams = []string{"token", "value", "private_token", "access_token", "job_token"}

const redacted = "[REDACTED]"

func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return redacted
	}
	for _, k := range redactedParams {
		if _, ok := q[k]; ok {
			q.Set(k, redacted)
		}
	}
	return q.Encode()
}

func redactBody(body []byte, contentType string) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return ""
	}
	ct, _, _ := mime.ParseMediaType(contentType)
	if ct == "application/x-www-form-urlencoded" {
		return redactQuery(string(body))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return redacted
	}
	b, _ := json.Marshal(redactJSON(v))
	return string(b)
}

func redactJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if slices.Contains(redactedParams, k) {
				x[k] = redacted
				continue
			}
			x[k] = redactJSON(val)
		}
	case []any:
		for i := range x {
			x[i] = redactJSON(x[i])
		}
	}
	return v
}

// Runner-side simulation: what gitlab-runner or an admin would do out of band.

// RotateRunnerTokenAsRunner rotates the token the way the runner's own
// auto-rotation does (POST /runners/reset_authentication_token) and returns the new
// token; the old one stops working at once. It returns "" for an unknown runner.
func (s *Server) RotateRunnerTokenAsRunner(id int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.runnerByID(id)
	if r == nil {
		return ""
	}
	s.resetToken(r)
	return r.token
}

// ContactRunner is a heartbeat from the runner process systemID ("" means
// "<legacy>"): it sets contacted_at and creates or refreshes that manager. It does
// nothing for an unknown runner.
func (s *Server) ContactRunner(id int64, systemID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.runnerByID(id); r != nil {
		s.heartbeat(r, systemID, nil)
	}
}

// DeleteRunnerDirect deletes a runner out of band, as an admin in the UI would.
func (s *Server) DeleteRunnerDirect(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeRunner(id)
}

// ExpireRunnerToken sets token_expires_at one second in the past, so the token is
// unknown to the runner endpoints from now on.
func (s *Server) ExpireRunnerToken(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.runnerByID(id); r != nil {
		t := s.now().Add(-time.Second)
		r.tokenExpiresAt = &t
	}
}
