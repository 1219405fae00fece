// Package lifecycle holds the product's rules for one runner and the CI/CD variable that holds
// its token: ensure (create, update, replace), rotate, status, delete and prune. It is written
// against a narrow API interface that internal/gitlab satisfies and tests replace with the
// fake GitLab.
package lifecycle

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// API is what lifecycle needs from GitLab.
type API interface {
	// Server is what the GitLab is (version, edition), learned once per run.
	Server(ctx context.Context) (gitlab.Server, error)

	ResolveProject(ctx context.Context, ref string) (gitlab.Namespace, error)
	ResolveGroup(ctx context.Context, ref string) (gitlab.Namespace, error)

	CreateRunner(ctx context.Context, a gitlab.RunnerAttrs) (gitlab.NewToken, error)
	GetRunner(ctx context.Context, id int64) (*gitlab.Runner, error)
	UpdateRunner(ctx context.Context, id int64, a gitlab.RunnerAttrs) error
	DeleteRunner(ctx context.Context, id int64) error
	ResetRunnerToken(ctx context.Context, id int64) (gitlab.NewToken, error)
	ResetRunnerTokenWithToken(ctx context.Context, current token.Secret) (gitlab.NewToken, error)
	ListOwnerRunners(ctx context.Context, owner spec.OwnerKind, ownerID int64, typ spec.RunnerType) ([]gitlab.RunnerSummary, error)
	ListManagers(ctx context.Context, id int64) ([]gitlab.Manager, error)

	GetVariable(ctx context.Context, v gitlab.VarRef) (*gitlab.Variable, error)
	CreateVariable(ctx context.Context, v gitlab.VarRef, w gitlab.VariableWrite) error
	UpdateVariable(ctx context.Context, v gitlab.VarRef, w gitlab.VariableWrite) error
	DeleteVariable(ctx context.Context, v gitlab.VarRef) error
	ListVariables(ctx context.Context, owner spec.OwnerKind, ownerID int64) ([]gitlab.Variable, error)
}

var _ API = (*gitlab.Client)(nil)

// Namespaces looks projects and groups up: what Resolve reads.
type Namespaces interface {
	ResolveProject(ctx context.Context, ref string) (gitlab.Namespace, error)
	ResolveGroup(ctx context.Context, ref string) (gitlab.Namespace, error)
}

// Reads is what Observe reads: a variable, an owner's runners and a runner's details. The
// GitLab client is one; fleet's snapshot of its bulk lists is another.
type Reads interface {
	GetVariable(ctx context.Context, v gitlab.VarRef) (*gitlab.Variable, error)
	ListOwnerRunners(ctx context.Context, owner spec.OwnerKind, ownerID int64, typ spec.RunnerType) ([]gitlab.RunnerSummary, error)
	GetRunner(ctx context.Context, id int64) (*gitlab.Runner, error)
}

// Service applies the rules. Log receives progress lines; Now is the clock.
type Service struct {
	API API // required
	Log logrus.FieldLogger
	Now func() time.Time
	// Pause waits between attempts when concurrent runs race (tests make it instant).
	Pause func(time.Duration)
	// BulkReadBack is set by a caller that reads every variable it stored back in bulk and
	// settles concurrent runs itself (fleet's apply): Execute then leaves out its per-runner
	// look for a newer marked runner and its read-back.
	BulkReadBack bool
}

// New returns a Service with a real clock.
func New(api API, log logrus.FieldLogger) *Service {
	return &Service{API: api, Log: log, Now: time.Now, Pause: time.Sleep}
}

// Resolved is a Spec whose project and group references are resolved to numeric ids.
type Resolved struct {
	Spec         spec.Spec
	Attrs        gitlab.RunnerAttrs
	Var          gitlab.VarRef
	OwnerPath    string // the runner owner's full path, for messages
	VarOwnerPath string // the variable owner's full path
	// Server is the GitLab the commands talk to (Resolve reads it).
	Server gitlab.Server
	// AnyDescription makes the search for runners marked for this variable look at every
	// runner of the owner, not only those with the spec's description (Delete sets it itself).
	AnyDescription bool
}

// Resolve validates s and looks its projects and groups up. It only reads.
func (s *Service) Resolve(ctx context.Context, sp spec.Spec) (Resolved, error) {
	return ResolveFrom(ctx, s.API, sp)
}

// ResolveFrom is Resolve with the look-ups answered by ns.
func ResolveFrom(ctx context.Context, ns Namespaces, sp spec.Spec) (Resolved, error) {
	sp.DefaultOwner()
	if err := sp.Validate(); err != nil {
		return Resolved{}, err
	}
	r := Resolved{Spec: sp}
	if sr, ok := ns.(serverReader); ok {
		srv, err := sr.Server(ctx)
		if err != nil {
			return Resolved{}, err
		}
		r.Server = srv
	}
	cache := map[string]gitlab.Namespace{}
	resolve := func(kind spec.OwnerKind, ref string) (gitlab.Namespace, error) {
		k := string(kind) + ":" + ref
		if n, ok := cache[k]; ok {
			return n, nil
		}
		var n gitlab.Namespace
		var err error
		if kind == spec.OwnerGroup {
			n, err = ns.ResolveGroup(ctx, ref)
		} else {
			n, err = ns.ResolveProject(ctx, ref)
		}
		if err == nil {
			cache[k] = n
		}
		return n, err
	}
	rn := sp.Runner
	r.Attrs = gitlab.RunnerAttrs{
		Type: rn.Type, Description: rn.Description, TagList: rn.TagList, RunUntagged: rn.RunUntagged,
		Locked: rn.Locked, AccessLevel: rn.AccessLevel, MaximumTimeout: rn.MaximumTimeout, Paused: rn.Paused,
		MaintenanceNote: rn.MaintenanceNote,
	}
	if r.Attrs.AccessLevel == "" {
		r.Attrs.AccessLevel = spec.NotProtected
	}
	switch rn.Type {
	case spec.ProjectType:
		ns, err := resolve(spec.OwnerProject, rn.ProjectRef)
		if err != nil {
			return Resolved{}, err
		}
		r.Attrs.ProjectID, r.OwnerPath = ns.ID, "project "+ns.FullPath
	case spec.GroupType:
		ns, err := resolve(spec.OwnerGroup, rn.GroupRef)
		if err != nil {
			return Resolved{}, err
		}
		r.Attrs.GroupID, r.OwnerPath = ns.ID, "group "+ns.FullPath
	default:
		r.OwnerPath = "the instance"
	}
	v := sp.Variable
	r.Var = gitlab.VarRef{Owner: v.Owner, Key: v.Key, Scope: v.EnvironmentScope}
	switch v.Owner {
	case spec.OwnerProject, spec.OwnerGroup:
		ns, err := resolve(v.Owner, v.OwnerRef)
		if err != nil {
			return Resolved{}, err
		}
		r.Var.OwnerID, r.VarOwnerPath = ns.ID, string(v.Owner)+" "+ns.FullPath
	default:
		r.Var.Scope = spec.DefaultScope
		r.VarOwnerPath = "the instance"
	}
	return r, nil
}

// Result is what a command did, for text and JSON output. It never holds a token.
type Result struct {
	Action           string     `json:"action"`
	RunnerID         int64      `json:"runner_id,omitempty"`
	RunnerType       string     `json:"runner_type,omitempty"`
	PreviousRunnerID int64      `json:"previous_runner_id,omitempty"`
	VariableKey      string     `json:"variable_key"`
	VariableOwner    string     `json:"variable_owner"`
	VariableOwnerID  int64      `json:"variable_owner_id,omitempty"`
	EnvironmentScope string     `json:"environment_scope,omitempty"`
	TokenExpiresAt   *time.Time `json:"token_expires_at"`
	Changes          []string   `json:"changes,omitempty"`
	// Diff has the old and new value of each runner attribute in Changes.
	Diff           []Change `json:"diff,omitempty"`
	Notes          []string `json:"notes,omitempty"`
	Reason         string   `json:"reason,omitempty"`
	OrphansDeleted []int64  `json:"orphans_deleted,omitempty"`
	// Managers are, for rotate, the managers that used the token within the last day when
	// there are more than one (each must be redeployed from the variable).
	Managers []gitlab.Manager `json:"managers,omitempty"`
	// Gitlab is the server's version and edition (contract, second round).
	Gitlab *gitlab.Info `json:"gitlab,omitempty"`
}

// Actions reported in Result.Action.
const (
	ActionCreated   = "created"
	ActionUpdated   = "updated"
	ActionUnchanged = "unchanged"
	ActionReplaced  = "replaced"
	ActionRotated   = "rotated"
	ActionSkipped   = "skipped"
	// ActionWouldRotate and ActionWouldRecreate are what rotate --dry-run plans.
	ActionWouldRotate   = "would rotate"
	ActionWouldRecreate = "would recreate"
	ActionDeleted       = "deleted"
	ActionAbsent        = "absent"
	// ActionRecreated: rotate replaced a runner whose rotation deadline had passed.
	ActionRecreated = "recreated"
)

func newResult(r Resolved, action string) Result {
	return Result{
		Action: action, RunnerType: string(r.Attrs.Type), VariableKey: r.Var.Key,
		VariableOwner: string(r.Var.Owner), VariableOwnerID: r.Var.OwnerID, EnvironmentScope: r.Var.Scope,
		Gitlab: r.Server.Info(),
	}
}

var targetRE = regexp.MustCompile(`^(project|group):([0-9]+)/([A-Za-z0-9_]+)@(.+)$|^instance/([A-Za-z0-9_]+)$`)

// ParseTarget reads a runner marker's target back into a variable reference.
func ParseTarget(t string) (gitlab.VarRef, bool) {
	m := targetRE.FindStringSubmatch(t)
	if m == nil {
		return gitlab.VarRef{}, false
	}
	if m[5] != "" {
		return gitlab.VarRef{Owner: spec.OwnerInstance, Key: m[5], Scope: spec.DefaultScope}, true
	}
	id, _ := strconv.ParseInt(m[2], 10, 64)
	return gitlab.VarRef{Owner: spec.OwnerKind(m[1]), OwnerID: id, Key: m[3], Scope: m[4]}, true
}

// runnerOwner returns where runners of this spec are listed.
func runnerOwner(a gitlab.RunnerAttrs) (spec.OwnerKind, int64) {
	switch a.Type {
	case spec.ProjectType:
		return spec.OwnerProject, a.ProjectID
	case spec.GroupType:
		return spec.OwnerGroup, a.GroupID
	}
	return spec.OwnerInstance, 0
}

func notManaged(name string) error {
	return fail.WithCode(fail.CodeConflict, fmt.Errorf("%s exists but was not written by runner-bootstrap (its description has no runner record): refusing to overwrite it; delete it or choose another --variable-key", name))
}

// VarName is how messages name the variable: "project platform/deploy variable RUNNER_TOKEN
// (scope *)", with the path the user gave rather than the numeric id, so that one run calls
// one object by one name.
func (r Resolved) VarName() string {
	if r.Var.Owner == spec.OwnerInstance {
		return "instance variable " + r.Var.Key
	}
	if r.VarOwnerPath == "" {
		return r.Var.String()
	}
	return fmt.Sprintf("%s variable %s (scope %s)", r.VarOwnerPath, r.Var.Key, r.Var.Scope)
}

func sameTags(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
