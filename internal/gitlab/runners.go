package gitlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// RunnerAttrs are the attributes of POST /user/runners and PUT /runners/:id, with owners
// resolved to numeric ids.
type RunnerAttrs struct {
	Type            spec.RunnerType
	ProjectID       int64
	GroupID         int64
	Description     string
	TagList         []string
	RunUntagged     bool
	Locked          bool
	AccessLevel     string
	MaximumTimeout  int64
	Paused          bool
	MaintenanceNote string
	// TokenExpiresAt and TokenRotationDeadline are sent on create only (EE Premium 18.10+;
	// other servers drop them silently, so callers compare the answer's token_expires_at).
	TokenExpiresAt        *time.Time
	TokenRotationDeadline *time.Time
}

// Runner is a runner as GitLab reports it (never with a token).
type Runner struct {
	ID              int64      `json:"id"`
	Type            string     `json:"runner_type"`
	Description     string     `json:"description"`
	TagList         []string   `json:"tag_list"`
	RunUntagged     bool       `json:"run_untagged"`
	Locked          bool       `json:"locked"`
	Paused          bool       `json:"paused"`
	AccessLevel     string     `json:"access_level"`
	MaximumTimeout  int64      `json:"maximum_timeout"`
	MaintenanceNote string     `json:"maintenance_note"`
	Status          string     `json:"status"`
	ContactedAt     *time.Time `json:"contacted_at"`
	// Version is the gitlab-runner version of the most recently contacted manager (deprecated
	// in REST, may be empty).
	Version string `json:"version"`
	// CreatedAt is reported by late 18.x and newer only.
	CreatedAt *time.Time `json:"created_at"`
	// TokenExpiresAt is reported by newer GitLab versions only.
	TokenExpiresAt *time.Time `json:"token_expires_at"`
	ProjectIDs     []int64    `json:"-"`
	GroupIDs       []int64    `json:"-"`
}

// RunnerSummary is a runner as list endpoints report it.
type RunnerSummary struct {
	ID          int64
	Type        string
	Description string
	Status      string
	Paused      bool
}

// Manager is one host or pod registered with a runner's token.
type Manager struct {
	SystemID    string     `json:"system_id"`
	Status      string     `json:"status"`
	Version     string     `json:"version,omitempty"`
	Platform    string     `json:"platform,omitempty"`
	ContactedAt *time.Time `json:"contacted_at,omitempty"`
	CreatedAt   *time.Time `json:"created_at,omitempty"`
}

// NewToken is a runner token fresh from GitLab: shown once, never again.
type NewToken struct {
	RunnerID  int64
	Token     token.Secret
	ExpiresAt *time.Time
}

func roleFor(t spec.RunnerType) string {
	switch t {
	case spec.InstanceType:
		return "to be an administrator (instance runners)"
	case spec.GroupType:
		return "the Owner role on the group"
	default:
		return "the Maintainer role on the project"
	}
}

// CreateRunner calls POST /user/runners.
func (c *Client) CreateRunner(ctx context.Context, a RunnerAttrs) (NewToken, error) {
	opt := &gl.CreateUserRunnerOptions{
		RunnerType:  new(string(a.Type)),
		Description: new(a.Description),
		Paused:      new(a.Paused),
		Locked:      new(a.Locked),
		RunUntagged: new(a.RunUntagged),
		TagList:     new(append([]string{}, a.TagList...)),
	}
	switch a.Type {
	case spec.ProjectType:
		opt.ProjectID = new(a.ProjectID)
	case spec.GroupType:
		opt.GroupID = new(a.GroupID)
	}
	if a.AccessLevel != "" {
		opt.AccessLevel = new(a.AccessLevel)
	}
	if a.MaximumTimeout > 0 {
		opt.MaximumTimeout = new(a.MaximumTimeout)
	}
	if a.MaintenanceNote != "" {
		opt.MaintenanceNote = new(a.MaintenanceNote)
	}
	// client-go's options lack the EE expiry params, so the request is made by hand.
	body := struct {
		*gl.CreateUserRunnerOptions
		TokenExpiresAt        *string `json:"token_expires_at,omitempty"`
		TokenRotationDeadline *string `json:"token_rotation_deadline,omitempty"`
	}{CreateUserRunnerOptions: opt, TokenExpiresAt: isoTime(a.TokenExpiresAt), TokenRotationDeadline: isoTime(a.TokenRotationDeadline)}
	o := op{action: "create the " + string(a.Type) + " runner", object: ownerObject(a), role: roleFor(a.Type)}
	req, err := c.gl.NewRequest(http.MethodPost, "user/runners", &body, c.post(ctx))
	if err != nil {
		return NewToken{}, wrap(ctx, o, err)
	}
	var r gl.UserRunner
	if _, err := c.gl.Do(req, &r); err != nil {
		return NewToken{}, wrap(ctx, o, err)
	}
	if r.ID == 0 {
		// Nothing is stored: a record naming runner 0 could never be followed.
		return NewToken{}, missingID(o, "runner")
	}
	if !token.IsRunnerToken(r.Token) {
		// Never stored: deploy jobs would hand it to gitlab-runner, which cannot use it. The
		// runner carries the marker, so the next run (or prune) deletes it.
		return NewToken{}, fail.WithCode(fail.CodeFailure, fmt.Errorf("create the %s runner: GitLab created runner %d but answered without a runner authentication token (glrt-), so nothing was stored; runner-bootstrap create deletes that runner when it runs again", a.Type, r.ID))
	}
	return NewToken{RunnerID: r.ID, Token: token.Secret(r.Token), ExpiresAt: r.TokenExpiresAt}, nil
}

func isoTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	return new(t.UTC().Format(time.RFC3339))
}

func ownerObject(a RunnerAttrs) string {
	switch a.Type {
	case spec.ProjectType:
		return fmt.Sprintf("project %d", a.ProjectID)
	case spec.GroupType:
		return fmt.Sprintf("group %d", a.GroupID)
	}
	return "the instance"
}

// runnerDetails adds token_expires_at (newer GitLab) to client-go's struct.
type runnerDetails struct {
	gl.RunnerDetails
	TokenExpiresAt *time.Time `json:"token_expires_at"`
	CreatedAt      *time.Time `json:"created_at"`
}

// GetRunner calls GET /runners/:id. A missing runner gives an error matching IsNotFound.
func (c *Client) GetRunner(ctx context.Context, id int64) (*Runner, error) {
	// client-go's RunnerDetails has no token_expires_at, so the request is made by hand.
	req, err := c.gl.NewRequest(http.MethodGet, "runners/"+idString(id), nil, c.idem(ctx))
	if err != nil {
		return nil, err
	}
	var d runnerDetails
	o := op{action: fmt.Sprintf("read runner %d", id), object: fmt.Sprintf("runner %d", id), role: "rights to read the runner (Maintainer of its project, Owner of its group, or admin)"}
	if _, err := c.gl.Do(req, &d); err != nil {
		return nil, wrap(ctx, o, err)
	}
	if d.ID == 0 {
		return nil, missingID(o, "runner")
	}
	r := &Runner{
		ID: d.ID, Type: d.RunnerType, Description: d.Description, TagList: d.TagList,
		RunUntagged: d.RunUntagged, Locked: d.Locked, Paused: d.Paused, AccessLevel: d.AccessLevel,
		MaximumTimeout: d.MaximumTimeout, MaintenanceNote: d.MaintenanceNote, Status: d.Status,
		ContactedAt: d.ContactedAt, TokenExpiresAt: d.TokenExpiresAt, Version: d.Version, CreatedAt: d.CreatedAt,
	}
	for _, p := range d.Projects {
		r.ProjectIDs = append(r.ProjectIDs, p.ID)
	}
	for _, g := range d.Groups {
		r.GroupIDs = append(r.GroupIDs, g.ID)
	}
	return r, nil
}

// UpdateRunner calls PUT /runners/:id with every attribute (the owner cannot change). A zero
// MaximumTimeout is sent as null, which removes the limit; client-go's options cannot send
// null, so the request is made by hand.
func (c *Client) UpdateRunner(ctx context.Context, id int64, a RunnerAttrs) error {
	body := map[string]any{
		"description":      a.Description,
		"paused":           a.Paused,
		"tag_list":         append([]string{}, a.TagList...),
		"run_untagged":     a.RunUntagged,
		"locked":           a.Locked,
		"maintenance_note": a.MaintenanceNote,
		"maximum_timeout":  nil,
	}
	if a.AccessLevel != "" {
		body["access_level"] = a.AccessLevel
	}
	if a.MaximumTimeout > 0 {
		body["maximum_timeout"] = a.MaximumTimeout
	}
	o := op{action: fmt.Sprintf("update runner %d", id), object: fmt.Sprintf("runner %d", id), role: roleFor(a.Type)}
	req, err := c.gl.NewRequest(http.MethodPut, "runners/"+idString(id), body, c.idem(ctx))
	if err != nil {
		return wrap(ctx, o, err)
	}
	_, err = c.gl.Do(req, nil)
	return wrap(ctx, o, err)
}

// DeleteRunner calls DELETE /runners/:id.
func (c *Client) DeleteRunner(ctx context.Context, id int64) error {
	_, err := c.gl.Runners.RemoveRunner(id, c.idem(ctx)...)
	return wrap(ctx, op{action: fmt.Sprintf("delete runner %d", id), object: fmt.Sprintf("runner %d", id), role: "rights to delete the runner (Maintainer of its only project, Owner of its group, or admin)"}, err)
}

// ResetRunnerToken calls POST /runners/:id/reset_authentication_token. The old token stops
// working at once.
func (c *Client) ResetRunnerToken(ctx context.Context, id int64) (NewToken, error) {
	t, _, err := c.gl.Runners.ResetRunnerAuthenticationToken(id, c.post(ctx)...)
	if err != nil {
		return NewToken{}, wrap(ctx, op{action: fmt.Sprintf("reset the token of runner %d", id), object: fmt.Sprintf("runner %d", id), role: "rights to update the runner (Maintainer of its project, Owner of its group, or admin); or use --use-runner-token"}, err)
	}
	if t.Token == nil || *t.Token == "" {
		return NewToken{}, fmt.Errorf("reset the token of runner %d: GitLab answered without a token", id)
	}
	return NewToken{RunnerID: id, Token: token.Secret(*t.Token), ExpiresAt: t.TokenExpiresAt}, nil
}

// ResetRunnerTokenWithToken calls POST /runners/reset_authentication_token, authenticated by
// the runner's current token instead of an access token.
func (c *Client) ResetRunnerTokenWithToken(ctx context.Context, current token.Secret) (NewToken, error) {
	body := struct {
		Token string `json:"token"`
	}{current.Reveal()}
	req, err := c.gl.NewRequest(http.MethodPost, "runners/reset_authentication_token", &body, c.post(ctx))
	if err != nil {
		return NewToken{}, err
	}
	var out struct {
		Token          string     `json:"token"`
		TokenExpiresAt *time.Time `json:"token_expires_at"`
	}
	if _, err := c.gl.Do(req, &out); err != nil {
		return NewToken{}, wrap(ctx, op{action: "reset the runner token with the runner's own token", object: "the runner", role: "a current runner token; the stored one is already invalid (expired, rotated or revoked), so rotate with an access token instead"}, err)
	}
	if out.Token == "" {
		return NewToken{}, fmt.Errorf("reset the runner token: GitLab answered without a token")
	}
	return NewToken{Token: token.Secret(out.Token), ExpiresAt: out.TokenExpiresAt}, nil
}

// VerifyRunnerToken calls POST /runners/verify with the runner's token and returns the runner
// id. GitLab records a manager for the given system id, so callers pass a stable one.
func (c *Client) VerifyRunnerToken(ctx context.Context, t token.Secret, systemID string) (int64, error) {
	body := struct {
		Token    string `json:"token"`
		SystemID string `json:"system_id,omitempty"`
	}{t.Reveal(), systemID}
	req, err := c.gl.NewRequest(http.MethodPost, "runners/verify", &body, c.post(ctx))
	if err != nil {
		return 0, err
	}
	var out struct {
		ID int64 `json:"id"`
	}
	if _, err := c.gl.Do(req, &out); err != nil {
		return 0, wrap(ctx, op{action: "verify the runner token", object: "the runner", role: "a valid runner token (it is invalid, expired or was rotated)"}, err)
	}
	return out.ID, nil
}

// DeleteRunnerManager calls DELETE /runners/managers with the runner's token and a system id:
// what gitlab-runner unregister does for one host. The token travels in a JSON body, never in
// the URL.
func (c *Client) DeleteRunnerManager(ctx context.Context, t token.Secret, systemID string) error {
	req, err := c.gl.NewRequest(http.MethodDelete, "runners/managers", nil, c.idem(ctx))
	if err != nil {
		return err
	}
	body, err := json.Marshal(struct {
		Token    string `json:"token"`
		SystemID string `json:"system_id"`
	}{t.Reveal(), systemID})
	if err != nil {
		return err
	}
	if err := req.SetBody(body); err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	_, err = c.gl.Do(req, nil)
	return wrap(ctx, op{action: "remove runner manager " + systemID, object: "runner manager " + systemID}, err)
}

// ListOwnerRunners lists every runner of one type owned by a project, a group, or (admin) the
// instance, following pagination.
func (c *Client) ListOwnerRunners(ctx context.Context, owner spec.OwnerKind, ownerID int64, typ spec.RunnerType) ([]RunnerSummary, error) {
	var out []RunnerSummary
	lo := gl.ListOptions{PerPage: 100, Page: 1}
	for {
		var (
			rs   []*gl.Runner
			resp *gl.Response
			err  error
		)
		t := new(string(typ))
		switch owner {
		case spec.OwnerProject:
			rs, resp, err = c.gl.Runners.ListProjectRunners(ownerID, &gl.ListProjectRunnersOptions{ListOptions: lo, Type: t}, c.idem(ctx)...)
		case spec.OwnerGroup:
			rs, resp, err = c.gl.Runners.ListGroupsRunners(ownerID, &gl.ListGroupsRunnersOptions{ListOptions: lo, Type: t}, c.idem(ctx)...)
		default:
			rs, resp, err = c.gl.Runners.ListAllRunners(&gl.ListRunnersOptions{ListOptions: lo, Type: t}, c.idem(ctx)...)
		}
		if err != nil {
			return nil, wrap(ctx, op{action: fmt.Sprintf("list the %s runners of %s %d", typ, owner, ownerID), object: fmt.Sprintf("%s %d", owner, ownerID), role: "the Maintainer role (projects), Owner role (groups) or admin (instance)"}, err)
		}
		for _, r := range rs {
			out = append(out, RunnerSummary{ID: r.ID, Type: r.RunnerType, Description: r.Description, Status: r.Status, Paused: r.Paused})
		}
		if resp == nil || resp.NextPage == 0 {
			return out, nil
		}
		lo.Page = resp.NextPage
	}
}

// ListManagers calls GET /runners/:id/managers.
func (c *Client) ListManagers(ctx context.Context, id int64) ([]Manager, error) {
	ms, _, err := c.gl.Runners.ListRunnerManagers(id, c.idem(ctx)...)
	if err != nil {
		return nil, wrap(ctx, op{action: fmt.Sprintf("list the managers of runner %d", id), object: fmt.Sprintf("runner %d", id)}, err)
	}
	out := make([]Manager, 0, len(ms))
	for _, m := range ms {
		out = append(out, Manager{SystemID: m.SystemID, Status: m.Status, Version: m.Version, Platform: m.Platform, ContactedAt: m.ContactedAt, CreatedAt: m.CreatedAt})
	}
	return out, nil
}
