package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// VarRef names one CI/CD variable: owner, owner id, key and environment scope.
type VarRef struct {
	Owner   spec.OwnerKind
	OwnerID int64
	Key     string
	Scope   string
}

// String is how the variable is named to the user: "project 42 variable RUNNER_TOKEN (scope *)".
func (v VarRef) String() string {
	if v.Owner == spec.OwnerInstance {
		return fmt.Sprintf("instance variable %s", v.Key)
	}
	return fmt.Sprintf("%s %d variable %s (scope %s)", v.Owner, v.OwnerID, v.Key, v.Scope)
}

// Target is the variable's identity as recorded in a runner's marker.
func (v VarRef) Target() string { return spec.Target(v.Owner, v.OwnerID, v.Key, v.Scope) }

// Variable is a variable's settings. Its value is deliberately not kept: hidden values are
// never returned, and visible ones are not needed.
type Variable struct {
	Key         string `json:"key"`
	Scope       string `json:"environment_scope"`
	Description string `json:"description"`
	Type        string `json:"variable_type"`
	Protected   bool   `json:"protected"`
	Masked      bool   `json:"masked"`
	Hidden      bool   `json:"hidden"`
	Raw         bool   `json:"raw"`
	// HoldsRunnerToken is set by ListVariables when GitLab returned the value (the variable is
	// not hidden) and it is a runner authentication token. The value itself is not kept.
	HoldsRunnerToken bool `json:"-"`
}

// VariableWrite is a create or update. Nil fields are not sent: an update of a hidden
// variable must not send masked, or GitLab rejects it.
type VariableWrite struct {
	Value       *token.Secret
	Description *string
	Protected   *bool
	Masked      *bool
	// Hidden is only honoured on create (masked_and_hidden); GitLab cannot change it later.
	Hidden bool
	Type   *string
	Raw    *bool
}

func varRole(o spec.OwnerKind) string {
	switch o {
	case spec.OwnerGroup:
		return "the Owner role on the group to manage its CI/CD variables"
	case spec.OwnerInstance:
		return "to be an administrator to manage instance CI/CD variables"
	}
	return "the Maintainer role on the project to manage its CI/CD variables"
}

func (c *Client) varOp(action string, v VarRef) op {
	obj := v.String()
	return op{action: action + " " + obj, object: obj, role: varRole(v.Owner)}
}

// GetVariable reads one variable (exact scope). A missing variable matches IsNotFound.
func (c *Client) GetVariable(ctx context.Context, v VarRef) (*Variable, error) {
	o := c.varOp("read", v)
	filter := &gl.VariableFilter{EnvironmentScope: v.Scope}
	switch v.Owner {
	case spec.OwnerProject:
		pv, _, err := c.gl.ProjectVariables.GetVariable(v.OwnerID, v.Key, &gl.GetProjectVariableOptions{Filter: filter}, c.idem(ctx)...)
		if err != nil {
			return nil, wrap(ctx, o, err)
		}
		return &Variable{Key: pv.Key, Scope: pv.EnvironmentScope, Description: pv.Description, Type: string(pv.VariableType), Protected: pv.Protected, Masked: pv.Masked, Hidden: pv.Hidden, Raw: pv.Raw}, nil
	case spec.OwnerGroup:
		gv, _, err := c.gl.GroupVariables.GetVariable(v.OwnerID, v.Key, &gl.GetGroupVariableOptions{Filter: filter}, c.idem(ctx)...)
		if err != nil {
			return nil, wrap(ctx, o, err)
		}
		return &Variable{Key: gv.Key, Scope: gv.EnvironmentScope, Description: gv.Description, Type: string(gv.VariableType), Protected: gv.Protected, Masked: gv.Masked, Hidden: gv.Hidden, Raw: gv.Raw}, nil
	default:
		iv, _, err := c.gl.InstanceVariables.GetVariable(v.Key, c.idem(ctx)...)
		if err != nil {
			return nil, wrap(ctx, o, err)
		}
		return &Variable{Key: iv.Key, Scope: spec.DefaultScope, Description: iv.Description, Type: string(iv.VariableType), Protected: iv.Protected, Masked: iv.Masked, Raw: iv.Raw}, nil
	}
}

// ErrStoredUnmasked is wrapped by CreateVariable's error when GitLab answered that it stored
// the variable unmasked although masked=true was sent (a token would then show in job logs).
var ErrStoredUnmasked = errors.New("GitLab stored the variable unmasked")

// ErrDescriptionDropped is wrapped by CreateVariable's error when GitLab's answer has no
// description although one was sent: GitLab 16.0 and 16.1 (instance variables: before 16.8)
// drop the param silently, and the variable then carries no record of its runner.
var ErrDescriptionDropped = errors.New("GitLab dropped the variable's description")

// variableAnswer is the part of a variable's JSON that says what GitLab really stored. Keys
// that a release does not know are absent, which is how a dropped param shows.
type variableAnswer struct {
	Masked      bool            `json:"masked"`
	Hidden      *bool           `json:"hidden"`
	Description json.RawMessage `json:"description"`
}

// createVariableBody is POST .../variables. masked is always sent with masked_and_hidden:
// GitLab before 16.11 drops masked_and_hidden silently, and only masked=true then keeps the
// token out of job logs (version matrix, consequence 3). masked_and_hidden is never sent as
// false: group variables declare it as a String, and "false" is truthy there (consequence 6).
type createVariableBody struct {
	Key              string  `json:"key"`
	Value            *string `json:"value,omitempty"`
	Description      *string `json:"description,omitempty"`
	EnvironmentScope *string `json:"environment_scope,omitempty"`
	Masked           *bool   `json:"masked,omitempty"`
	MaskedAndHidden  *bool   `json:"masked_and_hidden,omitempty"`
	Protected        *bool   `json:"protected,omitempty"`
	Raw              *bool   `json:"raw,omitempty"`
	VariableType     *string `json:"variable_type,omitempty"`
}

// CreateVariable calls POST .../variables and checks GitLab's answer: a variable stored
// unmasked although masked was asked gives an error wrapping ErrStoredUnmasked, one stored
// without the description sent an error wrapping ErrDescriptionDropped. The variable exists
// in both cases; the caller decides what to do with it (lifecycle deletes it).
func (c *Client) CreateVariable(ctx context.Context, v VarRef, w VariableWrite) error {
	o := c.varOp("create", v)
	body := createVariableBody{Key: v.Key, Description: w.Description, Masked: w.Masked, Protected: w.Protected, Raw: w.Raw, VariableType: w.Type}
	if w.Value != nil {
		body.Value = new(w.Value.Reveal())
	}
	var path string
	switch v.Owner {
	case spec.OwnerProject:
		path = "projects/" + idString(v.OwnerID) + "/variables"
	case spec.OwnerGroup:
		path = "groups/" + idString(v.OwnerID) + "/variables"
	default:
		path = "admin/ci/variables"
	}
	if v.Owner != spec.OwnerInstance {
		body.EnvironmentScope = new(v.Scope)
		if w.Hidden {
			body.MaskedAndHidden, body.Masked = new(true), new(true)
		}
	}
	req, err := c.gl.NewRequest(http.MethodPost, path, &body, c.post(ctx))
	if err != nil {
		return wrap(ctx, o, err)
	}
	var got variableAnswer
	if _, err := c.gl.Do(req, &got); err != nil {
		return wrap(ctx, o, err)
	}
	if body.Masked != nil && *body.Masked && !got.Masked {
		return fail.WithCode(fail.CodeConflict, fmt.Errorf("%w: GitLab answered that it stored %s unmasked although masked=true was sent", ErrStoredUnmasked, v))
	}
	if w.Description != nil && got.Description == nil {
		return fail.WithCode(fail.CodeUsage, fmt.Errorf("%w: GitLab stored %s without its description", ErrDescriptionDropped, v))
	}
	return nil
}

// UpdateVariable calls PUT .../variables/:key with filter[environment_scope], sending only the
// fields set in w.
func (c *Client) UpdateVariable(ctx context.Context, v VarRef, w VariableWrite) error {
	o := c.varOp("update", v)
	var value *string
	if w.Value != nil {
		value = new(w.Value.Reveal())
	}
	typ := varType(w.Type)
	filter := &gl.VariableFilter{EnvironmentScope: v.Scope}
	var err error
	switch v.Owner {
	case spec.OwnerProject:
		_, _, err = c.gl.ProjectVariables.UpdateVariable(v.OwnerID, v.Key, &gl.UpdateProjectVariableOptions{Value: value, Description: w.Description, Filter: filter, Masked: w.Masked, Protected: w.Protected, Raw: w.Raw, VariableType: typ}, c.idem(ctx)...)
	case spec.OwnerGroup:
		_, _, err = c.gl.GroupVariables.UpdateVariable(v.OwnerID, v.Key, &gl.UpdateGroupVariableOptions{Value: value, Description: w.Description, Filter: filter, Masked: w.Masked, Protected: w.Protected, Raw: w.Raw, VariableType: typ}, c.idem(ctx)...)
	default:
		_, _, err = c.gl.InstanceVariables.UpdateVariable(v.Key, &gl.UpdateInstanceVariableOptions{Value: value, Description: w.Description, Masked: w.Masked, Protected: w.Protected, Raw: w.Raw, VariableType: typ}, c.idem(ctx)...)
	}
	return wrap(ctx, o, err)
}

// DeleteVariable calls DELETE .../variables/:key with filter[environment_scope].
func (c *Client) DeleteVariable(ctx context.Context, v VarRef) error {
	o := c.varOp("delete", v)
	filter := &gl.VariableFilter{EnvironmentScope: v.Scope}
	var err error
	switch v.Owner {
	case spec.OwnerProject:
		_, err = c.gl.ProjectVariables.RemoveVariable(v.OwnerID, v.Key, &gl.RemoveProjectVariableOptions{Filter: filter}, c.idem(ctx)...)
	case spec.OwnerGroup:
		_, err = c.gl.GroupVariables.RemoveVariable(v.OwnerID, v.Key, &gl.RemoveGroupVariableOptions{Filter: filter}, c.idem(ctx)...)
	default:
		_, err = c.gl.InstanceVariables.RemoveVariable(v.Key, c.idem(ctx)...)
	}
	return wrap(ctx, o, err)
}

// ListVariables lists every variable of an owner (20 per page by default; 100 asked).
func (c *Client) ListVariables(ctx context.Context, owner spec.OwnerKind, ownerID int64) ([]Variable, error) {
	return c.ListVariablesExpecting(ctx, owner, ownerID, 0)
}

// pagesAtOnce bounds the pages ListVariablesExpecting asks for at once.
const pagesAtOnce = 4

// ListVariablesExpecting is ListVariables for a caller that knows about how many variables
// there are (fleet's read-back, right after storing them): it asks for the pages that many
// fill at once rather than one after another, then follows the last one's next page as usual.
func (c *Client) ListVariablesExpecting(ctx context.Context, owner spec.OwnerKind, ownerID int64, expected int) ([]Variable, error) {
	o := op{action: fmt.Sprintf("list the CI/CD variables of %s %d", owner, ownerID), object: fmt.Sprintf("%s %d", owner, ownerID), role: varRole(owner)}
	if owner == spec.OwnerInstance {
		o = op{action: "list the instance CI/CD variables", object: "the instance", role: varRole(owner)}
	}
	first := min(max(1, (expected+99)/100), pagesAtOnce)
	pages := make([][]Variable, first)
	next := make([]int64, first)
	errs := make([]error, first)
	var wg sync.WaitGroup
	for i := range first {
		wg.Go(func() { pages[i], next[i], errs[i] = c.variablesPage(ctx, owner, ownerID, int64(i+1)) })
	}
	wg.Wait()
	var out []Variable
	for i := range first {
		if errs[i] != nil {
			return nil, wrap(ctx, o, errs[i])
		}
		out = append(out, pages[i]...)
	}
	for page := next[first-1]; page != 0; {
		vs, n, err := c.variablesPage(ctx, owner, ownerID, page)
		if err != nil {
			return nil, wrap(ctx, o, err)
		}
		out = append(out, vs...)
		page = n
	}
	return out, nil
}

// variablesPage is one page of an owner's variables (100 a page) and the next page's number
// (0 after the last).
func (c *Client) variablesPage(ctx context.Context, owner spec.OwnerKind, ownerID, page int64) ([]Variable, int64, error) {
	lo := gl.ListOptions{PerPage: 100, Page: page}
	var out []Variable
	var resp *gl.Response
	var err error
	switch owner {
	case spec.OwnerProject:
		var vs []*gl.ProjectVariable
		vs, resp, err = c.gl.ProjectVariables.ListVariables(ownerID, &gl.ListProjectVariablesOptions{ListOptions: lo}, c.idem(ctx)...)
		for _, pv := range vs {
			out = append(out, Variable{Key: pv.Key, Scope: pv.EnvironmentScope, Description: pv.Description, Type: string(pv.VariableType), Protected: pv.Protected, Masked: pv.Masked, Hidden: pv.Hidden, Raw: pv.Raw, HoldsRunnerToken: token.IsRunnerToken(pv.Value)})
		}
	case spec.OwnerGroup:
		var vs []*gl.GroupVariable
		vs, resp, err = c.gl.GroupVariables.ListVariables(ownerID, &gl.ListGroupVariablesOptions{ListOptions: lo}, c.idem(ctx)...)
		for _, gv := range vs {
			out = append(out, Variable{Key: gv.Key, Scope: gv.EnvironmentScope, Description: gv.Description, Type: string(gv.VariableType), Protected: gv.Protected, Masked: gv.Masked, Hidden: gv.Hidden, Raw: gv.Raw, HoldsRunnerToken: token.IsRunnerToken(gv.Value)})
		}
	default:
		var vs []*gl.InstanceVariable
		vs, resp, err = c.gl.InstanceVariables.ListVariables(&gl.ListInstanceVariablesOptions{ListOptions: lo}, c.idem(ctx)...)
		for _, iv := range vs {
			out = append(out, Variable{Key: iv.Key, Scope: spec.DefaultScope, Description: iv.Description, Type: string(iv.VariableType), Protected: iv.Protected, Masked: iv.Masked, Raw: iv.Raw, HoldsRunnerToken: token.IsRunnerToken(iv.Value)})
		}
	}
	if err != nil {
		return nil, 0, err
	}
	if resp == nil {
		return out, 0, nil
	}
	return out, resp.NextPage, nil
}

func varType(t *string) *gl.VariableTypeValue {
	if t == nil {
		return nil
	}
	return new(gl.VariableTypeValue(*t))
}
