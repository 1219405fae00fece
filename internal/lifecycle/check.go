package lifecycle

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// checkAPI is what the preflight needs beyond API: the token's own record, its user and roles.
type checkAPI interface {
	TokenSelf(ctx context.Context) (gitlab.TokenInfo, error)
	CurrentUser(ctx context.Context) (gitlab.User, error)
	Role(ctx context.Context, owner spec.OwnerKind, ownerID, userID int64) (int, error)
}

// CheckToken is the access token as check reports it.
type CheckToken struct {
	Kind      string     `json:"kind"` // personal, project, group or unknown
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// CheckStep is one step of create, rotate or delete and whether it will work here.
type CheckStep struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
}

// CheckReport is what check prints.
type CheckReport struct {
	Gitlab            *gitlab.Info `json:"gitlab"`
	Token             CheckToken   `json:"token"`
	User              string       `json:"user,omitempty"`
	RunnerOwnerRole   string       `json:"runner_owner_role"`
	VariableOwnerRole string       `json:"variable_owner_role"`
	Steps             []CheckStep  `json:"steps"`
	Notes             []string     `json:"notes,omitempty"`
	ExitCode          int          `json:"exit_code"`
}

// Roles by GitLab access level.
var roleNames = map[int]string{0: "none", 10: "Guest", 15: "Planner", 20: "Reporter", 30: "Developer", 40: "Maintainer", 50: "Owner"}

var botRE = regexp.MustCompile(`^(project|group)_\d+_bot`)

// Check says, reading only, whether create, rotate and delete of r will work with this access
// token on this GitLab, and what GitLab will do differently from what was asked.
func (s *Service) Check(ctx context.Context, r Resolved) (CheckReport, error) {
	if err := s.withServer(ctx, &r); err != nil {
		return CheckReport{}, err
	}
	srv := r.Server
	rep := CheckReport{Gitlab: srv.Info(), Token: CheckToken{Kind: "unknown", Scopes: []string{}}}
	ca, ok := s.API.(checkAPI)
	if !ok {
		return rep, fmt.Errorf("check needs the GitLab client")
	}
	scopesKnown := false
	if ti, err := ca.TokenSelf(ctx); err == nil {
		rep.Token = CheckToken{Kind: "personal", Scopes: ti.Scopes, ExpiresAt: ti.ExpiresAt}
		scopesKnown = true
		if ti.ExpiresAt != nil && ti.ExpiresAt.Sub(s.Now()) < 7*24*time.Hour {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the access token expires on %s: renew it before the next scheduled rotation", ti.ExpiresAt.Format(time.DateOnly)))
		}
	} else {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the access token's scopes could not be read (%v); they are assumed sufficient", err))
	}
	user, uerr := ca.CurrentUser(ctx)
	if uerr == nil {
		rep.User = user.Username
		if m := botRE.FindStringSubmatch(user.Username); m != nil && rep.Token.Kind == "personal" {
			rep.Token.Kind = m[1]
		}
	}
	has := func(scopes ...string) bool {
		return !scopesKnown || slices.ContainsFunc(rep.Token.Scopes, func(sc string) bool { return slices.Contains(scopes, sc) })
	}
	role := func(owner spec.OwnerKind, id int64) (int, string) {
		switch {
		case uerr != nil:
			return -1, "unknown"
		case user.Admin:
			return 100, "administrator"
		case owner == spec.OwnerInstance:
			return 0, "not an administrator"
		}
		lvl, err := ca.Role(ctx, owner, id, user.ID)
		if err != nil {
			return -1, "unknown"
		}
		return lvl, roleNames[lvl]
	}
	rOwner, rID := runnerOwner(r.Attrs)
	rLevel, rName := role(rOwner, rID)
	vLevel, vName := role(r.Var.Owner, r.Var.OwnerID)
	rep.RunnerOwnerRole, rep.VariableOwnerRole = rName, vName
	need := func(owner spec.OwnerKind) (int, string) {
		switch owner {
		case spec.OwnerProject:
			return 40, "the Maintainer role on the project"
		case spec.OwnerGroup:
			return 50, "the Owner role on the group"
		}
		return 100, "an administrator"
	}
	roleOK := func(level int, owner spec.OwnerKind, what string) (bool, string) {
		minLevel, name := need(owner)
		if level < 0 {
			return true, fmt.Sprintf("the token user's role could not be read; %s needs %s", what, name)
		}
		if level < minLevel {
			return false, fmt.Sprintf("%s needs %s; the token's user has %s", what, name, roleNames[level])
		}
		return true, ""
	}
	step := func(name string, ok bool, reasons ...string) {
		var rs []string
		for _, x := range reasons {
			if x != "" {
				rs = append(rs, x)
			}
		}
		if len(rs) == 0 {
			rs = []string{"will work"}
		}
		rep.Steps = append(rep.Steps, CheckStep{Name: name, OK: ok, Reason: strings.Join(rs, "; ")})
	}

	// Create the runner.
	createScope := has("api") || (has("create_runner") && srv.Has(gitlab.CapCreateRunnerScope))
	scopeWhy := ""
	if !createScope {
		scopeWhy = "POST /user/runners needs the api or create_runner scope"
		if !srv.Has(gitlab.CapCreateRunnerScope) {
			scopeWhy = fmt.Sprintf("POST /user/runners needs the api scope on %s (the create_runner scope exists from %s)", srv, gitlab.Requirement(gitlab.CapCreateRunnerScope))
		}
	}
	ok1, why1 := roleOK(rLevel, rOwner, "creating the runner")
	step("create_runner", createScope && ok1, scopeWhy, why1)

	// Token expiry chosen at creation.
	if sp := r.Spec.Runner; sp.TokenExpiresIn > 0 || sp.TokenRotationDeadlineIn > 0 {
		ok, why := true, "GitLab EE: the licence tier cannot be read without admin rights; if it is Free, create deletes the runner again and exits 2"
		for _, rf := range refusals(srv, r, true) {
			if rf.Capability == gitlab.CapTokenExpiryAtCreate {
				ok, why = false, rf.Err.Error()
			}
		}
		step("token_expiry", ok, why)
	}

	// Store the token.
	storeOK, storeWhy := has("api"), ""
	if !storeOK {
		storeOK, storeWhy = false, "CI/CD variables need the api scope"
	}
	ok2, why2 := roleOK(vLevel, r.Var.Owner, "writing the variable")
	var refusal string
	for _, rf := range refusals(srv, r, false) {
		refusal = rf.Err.Error()
	}
	notes := storageNotes(srv, r)
	step("store_token", storeOK && ok2 && refusal == "", storeWhy, why2, refusal, strings.Join(notes, "; "))
	if r.Var.Owner == spec.OwnerGroup && !srv.Has(gitlab.CapGroupVariableFilterUpdate) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s ignores the environment scope on group variable updates (%s honours it): rotate refuses a group variable whose key other scopes share", srv, gitlab.Requirement(gitlab.CapGroupVariableFilterUpdate)))
	}

	// Rotate and delete act on /runners/:id.
	runnerScope := has("api") || (has("manage_runner") && srv.Has(gitlab.CapManageRunnerScope))
	runnerWhy := ""
	if !runnerScope {
		runnerWhy = "resetting and deleting a runner need the api scope"
		if srv.Has(gitlab.CapManageRunnerScope) {
			runnerWhy = "resetting and deleting a runner need the api or manage_runner scope"
		}
	}
	ok3, why3 := roleOK(rLevel, rOwner, "resetting the token")
	deadline := ""
	if r.Spec.Runner.TokenRotationDeadlineIn > 0 {
		deadline = "after the rotation deadline rotate replaces the runner (a new runner and token, the old runner deleted)"
	}
	step("rotate_token", runnerScope && ok3 && has("api"), runnerWhy, why3, deadline)
	ok4, why4 := roleOK(rLevel, rOwner, "deleting the runner")
	step("delete", runnerScope && ok4 && storeOK && ok2, runnerWhy, why4, why2)

	managers := "GET /runners/:id/managers"
	if !srv.Has(gitlab.CapRunnerManagers) {
		managers = fmt.Sprintf("unknown on this version: status cannot list managers before %s", gitlab.Requirement(gitlab.CapRunnerManagers))
	}
	step("list_managers", true, managers)

	rep.ExitCode = fail.CodeOK
	for _, st := range rep.Steps {
		if !st.OK {
			rep.ExitCode = fail.CodeUsage
		}
	}
	return rep, nil
}
