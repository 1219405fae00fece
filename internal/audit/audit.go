// Package audit reads a GitLab scope (a group with its subgroups, a project, or the instance)
// and reports what still depends on runner registration tokens and which runners and
// runner-token variables need attention. It only reads. The findings carry stable ids
// (contract.md); the reports are text, JSON, Markdown and a self-contained HTML page.
package audit

import (
	"context"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// API is what the audit reads from GitLab; internal/gitlab's client satisfies it.
type API interface {
	ResolveProject(ctx context.Context, ref string) (gitlab.Namespace, error)
	ResolveGroup(ctx context.Context, ref string) (gitlab.Namespace, error)
	ListDescendants(ctx context.Context, groupID int64) (groups, projects []gitlab.Namespace, err error)
	ListGroupProjects(ctx context.Context, groupID int64) ([]gitlab.Namespace, error)

	ApplicationSettings(ctx context.Context) (gitlab.InstanceSettings, error)
	RegistrationTokenState(ctx context.Context, owner spec.OwnerKind, id int64) (gitlab.RegistrationToken, error)

	ListOwnerRunners(ctx context.Context, owner spec.OwnerKind, ownerID int64, typ spec.RunnerType) ([]gitlab.RunnerSummary, error)
	GetRunner(ctx context.Context, id int64) (*gitlab.Runner, error)
	ListManagers(ctx context.Context, id int64) ([]gitlab.Manager, error)
	RunnerOrigins(ctx context.Context, ids []int64) (map[int64]gitlab.RunnerOrigin, error)

	ListVariables(ctx context.Context, owner spec.OwnerKind, ownerID int64) ([]gitlab.Variable, error)
	GetVariable(ctx context.Context, v gitlab.VarRef) (*gitlab.Variable, error)
}

var _ API = (*gitlab.Client)(nil)

// Options say what to audit.
type Options struct {
	// Kind is the scope: group, project or instance.
	Kind spec.OwnerKind
	// Ref is the group's or project's id or full path.
	Ref              string
	IncludeSubgroups bool
	// WarnWithin is when a token counts as expiring soon (default 7 days).
	WarnWithin time.Duration
	// Concurrency bounds the requests in flight (default 8).
	Concurrency int
	// Server is the GitLab being read (its version decides which reads exist and which
	// findings apply); zero when unknown, and then a current GitLab is assumed.
	Server gitlab.Server
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Progress is called after each runner is read (one call at a time), for large scopes.
	Progress func(runnerID int64, done, total int)
}

// Severity orders findings; the exit code compares against --fail-on.
type Severity string

// The severities, lowest first.
const (
	Low      Severity = "low"
	Medium   Severity = "medium"
	High     Severity = "high"
	Critical Severity = "critical"
)

// Severities lists every severity, highest first (the order of reports).
var Severities = []Severity{Critical, High, Medium, Low}

func (s Severity) rank() int {
	switch s {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	}
	return 0
}

// AtLeast reports whether s is as severe as min or more.
func (s Severity) AtLeast(min Severity) bool { return s.rank() >= min.rank() }

// Finding is one thing that needs attention.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Object names what the finding is about: "group platform", "runner 1004", "project
	// platform/deploy variable RUNNER_TOKEN (scope *)".
	Object  string `json:"object"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
	// RunnerID is set when the object is a runner or a runner's variable.
	RunnerID int64 `json:"runner_id,omitempty"`
}

// Runner is one runner in scope, as the reports show it.
type Runner struct {
	ID          int64  `json:"id"`
	RunnerType  string `json:"runner_type"`
	Description string `json:"description"`
	// Owner is "group platform", "project platform/deploy" or "the instance".
	Owner string `json:"owner"`
	// CreationMethod is registration_token, authenticated_user or unknown.
	CreationMethod string           `json:"creation_method"`
	CreatedBy      string           `json:"created_by,omitempty"`
	CreatedAt      *time.Time       `json:"created_at,omitempty"`
	Status         string           `json:"status"`
	ContactedAt    *time.Time       `json:"contacted_at"`
	Managers       []gitlab.Manager `json:"managers"`
	// Version is the newest gitlab-runner version among the managers ("" when none reported).
	Version string `json:"version"`
	// Managed: a variable this tool writes records the runner, or the runner carries its marker.
	Managed bool `json:"managed"`
	// Variable names the variable that holds the runner's token.
	Variable       *string    `json:"variable"`
	TokenExpiresAt *time.Time `json:"token_expires_at"`
	// managersKnown: GitLab answered the managers of the runner (GraphQL or REST 17.1+).
	managersKnown bool
}

// Scope is what was audited.
type Scope struct {
	Kind             string `json:"kind"`
	ID               int64  `json:"id,omitempty"`
	Path             string `json:"path,omitempty"`
	IncludeSubgroups bool   `json:"include_subgroups"`
	Groups           int    `json:"groups"`
	Projects         int    `json:"projects"`
}

// Name is how reports name the scope: "group platform (and subgroups)".
func (s Scope) Name() string {
	switch s.Kind {
	case "instance":
		return "the instance"
	case "group":
		if s.IncludeSubgroups {
			return "group " + s.Path + " and its subgroups"
		}
		return "group " + s.Path
	}
	return "project " + s.Path
}

// Summary counts findings per severity.
type Summary struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
}

// Count returns the number of findings of severity s.
func (s Summary) Count(sev Severity) int {
	switch sev {
	case Critical:
		return s.Critical
	case High:
		return s.High
	case Medium:
		return s.Medium
	}
	return s.Low
}

// Report is the audit's result; it never holds a token.
type Report struct {
	GitLab      gitlab.Info `json:"gitlab"`
	Scope       Scope       `json:"scope"`
	GeneratedAt time.Time   `json:"generated_at"`
	WarnWithin  string      `json:"warn_within"`
	Summary     Summary     `json:"summary"`
	Findings    []Finding   `json:"findings"`
	Runners     []Runner    `json:"runners"`
	// Notes say what could not be read and why (so an empty finding list is not mistaken
	// for a clean bill of health).
	Notes []string `json:"notes"`
}

// Worst returns the highest severity among the findings ("" when there are none).
func (r Report) Worst() Severity {
	var w Severity
	for _, f := range r.Findings {
		if f.Severity.rank() > w.rank() {
			w = f.Severity
		}
	}
	return w
}
