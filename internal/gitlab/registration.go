package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// InstanceSettings are the application settings about runner registration and token expiry
// (GET /application/settings, administrators only). Nil fields were not reported by the
// server (older versions lack some keys).
type InstanceSettings struct {
	// AllowRegistrationToken is allow_runner_registration_token: whether runner registration
	// tokens still work anywhere on the instance (false is the 17.0+ default).
	AllowRegistrationToken *bool `json:"allow_runner_registration_token"`
	// ValidRunnerRegistrars is who may register runners with a registration token.
	ValidRunnerRegistrars []string `json:"valid_runner_registrars"`
	// The default expiry of new runner tokens, in seconds (nil: tokens never expire).
	RunnerTokenExpiration        *int64 `json:"runner_token_expiration_interval"`
	GroupRunnerTokenExpiration   *int64 `json:"group_runner_token_expiration_interval"`
	ProjectRunnerTokenExpiration *int64 `json:"project_runner_token_expiration_interval"`
}

// ApplicationSettings reads the runner settings of GET /application/settings. The answer
// also holds the instance registration token; it is not decoded, so it is never kept.
func (c *Client) ApplicationSettings(ctx context.Context) (InstanceSettings, error) {
	req, err := c.gl.NewRequest(http.MethodGet, "application/settings", nil, c.idem(ctx))
	if err != nil {
		return InstanceSettings{}, err
	}
	var out InstanceSettings
	if _, err := c.gl.Do(req, &out); err != nil {
		return InstanceSettings{}, wrap(ctx, op{action: "read the instance's application settings", object: "the application settings", role: "to be an administrator"}, err)
	}
	return out, nil
}

// RegistrationToken is what GET /projects/:id or /groups/:id says about the owner's runner
// registration token.
type RegistrationToken int

// The states of an owner's registration token.
const (
	// RegistrationTokenHidden: the answer had no runners_token key, because only
	// administrators, project Maintainers and group Owners see it.
	RegistrationTokenHidden RegistrationToken = iota
	// RegistrationTokenDisabled: runners_token was null, so registration tokens are
	// disallowed for the namespace (by the instance or its top-level group).
	RegistrationTokenDisabled
	// RegistrationTokenEnabled: a registration token exists and works.
	RegistrationTokenEnabled
)

// RegistrationTokenState reads whether a project or group still has a usable registration
// token. Only the presence of runners_token is looked at; its value is never kept.
func (c *Client) RegistrationTokenState(ctx context.Context, owner spec.OwnerKind, id int64) (RegistrationToken, error) {
	path, opt := "projects/"+idString(id), any(nil)
	if owner == spec.OwnerGroup {
		// with_projects=false keeps a large group's answer small.
		path, opt = "groups/"+idString(id), &gl.GetGroupOptions{WithProjects: new(false)}
	}
	req, err := c.gl.NewRequest(http.MethodGet, path, opt, c.idem(ctx))
	if err != nil {
		return RegistrationTokenHidden, err
	}
	var out struct {
		RunnersToken json.RawMessage `json:"runners_token"`
	}
	o := op{action: fmt.Sprintf("read %s %d", owner, id), object: fmt.Sprintf("%s %d", owner, id), role: "access to it"}
	if _, err := c.gl.Do(req, &out); err != nil {
		return RegistrationTokenHidden, wrap(ctx, o, err)
	}
	switch raw := bytes.TrimSpace(out.RunnersToken); {
	case len(raw) == 0:
		return RegistrationTokenHidden, nil
	case bytes.Equal(raw, []byte("null")), bytes.Equal(raw, []byte(`""`)):
		return RegistrationTokenDisabled, nil
	}
	return RegistrationTokenEnabled, nil
}

// ListGroupProjects lists the projects directly in a group (not in its subgroups, not shared
// into it).
func (c *Client) ListGroupProjects(ctx context.Context, groupID int64) ([]Namespace, error) {
	return c.listGroupProjects(ctx, groupID, false)
}
