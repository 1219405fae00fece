// Package spec describes what a user asks for: one runner and the CI/CD variable that holds its
// token. Every entry point (create flags, fleet manifests, migrated Helm values or register
// commands) produces a Spec, and the rest of the program works only with Specs.
package spec

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
)

// RunnerType is the scope of a runner, with GitLab's own names.
type RunnerType string

// The runner types of POST /user/runners.
const (
	InstanceType RunnerType = "instance_type"
	GroupType    RunnerType = "group_type"
	ProjectType  RunnerType = "project_type"
)

// Access levels of a runner.
const (
	NotProtected = "not_protected"
	RefProtected = "ref_protected"
)

// OwnerKind says where a CI/CD variable lives.
type OwnerKind string

// Variable owners.
const (
	OwnerProject  OwnerKind = "project"
	OwnerGroup    OwnerKind = "group"
	OwnerInstance OwnerKind = "instance"
)

// Variable types.
const (
	EnvVar = "env_var"
	File   = "file"
)

// Limits GitLab enforces, checked locally so bad input never reaches the API.
const (
	MinMaximumTimeout = 600
	MaxTags           = 50
	MaxKeyLength      = 255
	MaxTextLength     = 1024
	DefaultKey        = "RUNNER_TOKEN"
	DefaultScope      = "*"
)

// Runner is the desired state of a runner, with the attributes of POST /user/runners.
type Runner struct {
	Type RunnerType `json:"runner_type"`
	// ProjectRef and GroupRef are a numeric id or a full path, as the user gave them.
	ProjectRef      string   `json:"project_id,omitempty"`
	GroupRef        string   `json:"group_id,omitempty"`
	Description     string   `json:"description,omitempty"`
	TagList         []string `json:"tag_list,omitempty"`
	RunUntagged     bool     `json:"run_untagged"`
	Locked          bool     `json:"locked"`
	AccessLevel     string   `json:"access_level,omitempty"`
	MaximumTimeout  int64    `json:"maximum_timeout,omitempty"` // 0 means "no limit"
	Paused          bool     `json:"paused"`
	MaintenanceNote string   `json:"maintenance_note,omitempty"`
	// TokenExpiresIn and TokenRotationDeadlineIn choose the first token's expiry and rotation
	// deadline at creation (GitLab EE Premium 18.10+); 0 leaves them to GitLab's settings.
	TokenExpiresIn          time.Duration `json:"token_expires_in,omitempty"`
	TokenRotationDeadlineIn time.Duration `json:"token_rotation_deadline_in,omitempty"`
}

// Bounds of a token expiry chosen at creation (EE CreateRunnerService; GitLab may cap it
// further by the instance, group or project runner token expiration setting).
const (
	MinTokenExpiresIn = 5 * time.Minute
	MaxTokenExpiresIn = 15 * 24 * time.Hour
)

// Variable is where the runner's token is stored.
type Variable struct {
	Key              string    `json:"key"`
	Owner            OwnerKind `json:"owner"`
	OwnerRef         string    `json:"owner_ref,omitempty"` // id or path; empty for instance
	EnvironmentScope string    `json:"environment_scope"`
	Protected        bool      `json:"protected"`
	Hidden           bool      `json:"hidden"`
	Type             string    `json:"variable_type"`
}

// Spec is one runner and its variable.
type Spec struct {
	Runner   Runner   `json:"runner"`
	Variable Variable `json:"variable"`
}

// New returns a Spec with the documented defaults: project runner, untagged jobs allowed,
// variable RUNNER_TOKEN, scope *, protected, hidden, env_var.
func New() Spec {
	return Spec{
		Runner: Runner{Type: ProjectType, RunUntagged: true},
		Variable: Variable{
			Key: DefaultKey, EnvironmentScope: DefaultScope,
			Protected: true, Hidden: true, Type: EnvVar,
		},
	}
}

// DefaultOwner fills in the variable's owner from the runner's owner when none was given:
// a project runner's token goes to its project, a group runner's to its group.
func (s *Spec) DefaultOwner() {
	if s.Variable.Owner != "" {
		return
	}
	switch s.Runner.Type {
	case ProjectType:
		s.Variable.Owner, s.Variable.OwnerRef = OwnerProject, s.Runner.ProjectRef
	case GroupType:
		s.Variable.Owner, s.Variable.OwnerRef = OwnerGroup, s.Runner.GroupRef
	case InstanceType:
		s.Variable.Owner = OwnerInstance
	}
}

var (
	keyRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	// refRE accepts a numeric id or a full path of a namespace/project (GitLab path characters).
	refRE   = regexp.MustCompile(`^([0-9]+|[A-Za-z0-9_.][A-Za-z0-9_.\-]*(/[A-Za-z0-9_.][A-Za-z0-9_.\-]*)*)$`)
	scopeRE = regexp.MustCompile(`^[A-Za-z0-9_\-/${}.*]+$`)
)

// Validate checks everything GitLab would reject, so that bad input fails before any write.
// Errors are one sentence: what was wrong and what is expected. Call DefaultOwner first.
func (s Spec) Validate() error {
	if err := s.Runner.Validate(); err != nil {
		return err
	}
	if err := s.Variable.Validate(); err != nil {
		return err
	}
	return s.checkNote()
}

// Validate checks a runner spec.
func (r Runner) Validate() error {
	switch r.Type {
	case ProjectType:
		if r.ProjectRef == "" {
			return fail.Usagef("a project_type runner needs --project-id (a numeric id or a full path such as group/project)")
		}
		if err := CheckRef("--project-id", r.ProjectRef); err != nil {
			return err
		}
	case GroupType:
		if r.GroupRef == "" {
			return fail.Usagef("a group_type runner needs --group-id (a numeric id or a full path such as my-group/sub)")
		}
		if err := CheckRef("--group-id", r.GroupRef); err != nil {
			return err
		}
	case InstanceType:
	case "":
		return fail.Usagef("runner type is missing: expected instance_type, group_type or project_type")
	default:
		return fail.Usagef("runner type %q is not valid: expected instance_type, group_type or project_type", string(r.Type))
	}
	if r.MaximumTimeout != 0 && r.MaximumTimeout < MinMaximumTimeout {
		return fail.Usagef("maximum timeout %d is too short: GitLab needs at least %d seconds (10 minutes)", r.MaximumTimeout, MinMaximumTimeout)
	}
	if r.MaximumTimeout < 0 {
		return fail.Usagef("maximum timeout %d is negative: expected a number of seconds, at least %d", r.MaximumTimeout, MinMaximumTimeout)
	}
	if len(r.TagList) > MaxTags {
		return fail.Usagef("%d tags given: GitLab accepts at most %d tags per runner", len(r.TagList), MaxTags)
	}
	for _, t := range r.TagList {
		if strings.TrimSpace(t) == "" {
			return fail.Usagef("the tag list has an empty tag: expected comma-separated non-empty tags such as docker,linux")
		}
		if strings.Contains(t, ",") {
			return fail.Usagef("tag %q contains a comma: expected one tag per list entry", t)
		}
	}
	if !r.RunUntagged && len(r.TagList) == 0 {
		return fail.Usagef("a runner that does not run untagged jobs needs at least one tag: add --tag-list or drop --no-run-untagged")
	}
	switch r.AccessLevel {
	case "", NotProtected, RefProtected:
	default:
		return fail.Usagef("access level %q is not valid: expected not_protected or ref_protected", r.AccessLevel)
	}
	if n := utf8.RuneCountInString(r.Description); n > MaxTextLength {
		return fail.Usagef("the description is %d characters long: GitLab accepts at most %d", n, MaxTextLength)
	}
	return r.validateExpiry()
}

func (r Runner) validateExpiry() error {
	exp, dl := r.TokenExpiresIn, r.TokenRotationDeadlineIn
	switch {
	case exp == 0 && dl == 0:
		return nil
	case exp < 0 || dl < 0:
		return fail.Usagef("token_expires_in %s and token_rotation_deadline_in %s must not be negative: expected durations such as 168h", exp, dl)
	case exp == 0:
		return fail.Usagef("token_rotation_deadline_in %s needs token_expires_in too (the deadline can be at most the expiry)", dl)
	case exp < MinTokenExpiresIn || exp > MaxTokenExpiresIn:
		return fail.Usagef("token_expires_in %s is out of range: GitLab accepts 5m to 360h (15 days)", exp)
	case dl > exp:
		return fail.Usagef("token_rotation_deadline_in %s is later than token_expires_in %s: the deadline can be at most the expiry", dl, exp)
	}
	return nil
}

// noteRoom is how many characters of a maintenance note fit beside the tool's marker line for
// variable v (GitLab's limit is 1,024 characters for the whole note).
func noteRoom(v Variable) int {
	// With room for the longest numeric id.
	return record.NoteRoom(Target(v.Owner, 1<<62, v.Key, v.EnvironmentScope), MaxTextLength)
}

// checkNote checks that the user's maintenance note fits beside the marker.
func (s Spec) checkNote() error {
	n, room := utf8.RuneCountInString(s.Runner.MaintenanceNote), noteRoom(s.Variable)
	if n > room {
		return fail.Usagef("the maintenance note is %d characters long: at most %d fit beside the tool's marker for variable %s (GitLab accepts %d in all)", n, room, s.Variable.Key, MaxTextLength)
	}
	return nil
}

// Validate checks a variable target.
func (v Variable) Validate() error {
	if v.Key == "" {
		return fail.Usagef("the variable key is empty: expected letters, digits and '_' such as %s", DefaultKey)
	}
	if len(v.Key) > MaxKeyLength {
		return fail.Usagef("the variable key is %d characters long: GitLab accepts at most %d", len(v.Key), MaxKeyLength)
	}
	if !keyRE.MatchString(v.Key) {
		return fail.Usagef("variable key %q is not valid: it can contain only letters, digits and '_'", v.Key)
	}
	if why := reservedKey(v.Key); why != "" {
		return fail.Usagef("variable key %s is refused: %s; choose another --variable-key such as %s", v.Key, why, DefaultKey)
	}
	switch v.Owner {
	case OwnerProject, OwnerGroup:
		flag := "--variable-" + string(v.Owner)
		if v.OwnerRef == "" {
			return fail.Usagef("the variable's %s is missing: give %s (a numeric id or a full path)", v.Owner, flag)
		}
		if err := CheckRef(flag, v.OwnerRef); err != nil {
			return err
		}
	case OwnerInstance:
		if v.EnvironmentScope != "" && v.EnvironmentScope != DefaultScope {
			return fail.Usagef("instance variables have no environment scope: drop --variable-environment-scope or store the token in a project or group")
		}
	default:
		return fail.Usagef("the variable's owner is missing: give --variable-project, --variable-group or --variable-instance")
	}
	if v.EnvironmentScope == "" || len(v.EnvironmentScope) > MaxKeyLength || !scopeRE.MatchString(v.EnvironmentScope) {
		return fail.Usagef("environment scope %q is not valid: expected * or an environment name such as production or review/*", v.EnvironmentScope)
	}
	switch v.Type {
	case EnvVar, File:
	default:
		return fail.Usagef("variable type %q is not valid: expected env_var or file", v.Type)
	}
	return nil
}

// CheckRef checks that ref is a numeric id or a full path.
func CheckRef(flag, ref string) error {
	if !refRE.MatchString(ref) || strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") {
		return fail.Usagef("%s %q is not valid: expected a numeric id or a full path such as group/project", flag, ref)
	}
	return nil
}

// reservedKey says why a key must not hold a runner token, or "": a CI/CD variable of that
// name replaces what every job of the owner gets (PATH, HOME and the like break jobs), and
// GitLab's own CI_*/GITLAB_* names are predefined or read by tools (GITLAB_TOKEN is the
// access token of this very tool: the runner token would replace it, or leak to whatever
// reads it).
func reservedKey(key string) string {
	u := strings.ToUpper(key)
	switch {
	case strings.HasPrefix(u, "CI_"), strings.HasPrefix(u, "GITLAB_"):
		return "GitLab predefines or reads variables named CI_* and GITLAB_* (GITLAB_TOKEN is the access token this tool and others read)"
	case reservedNames[u]:
		return "a CI/CD variable of that name replaces the environment variable every job relies on"
	}
	return ""
}

var reservedNames = map[string]bool{
	"PATH": true, "HOME": true, "SHELL": true, "USER": true, "PWD": true, "TMPDIR": true, "LANG": true,
	"LD_PRELOAD": true, "LD_LIBRARY_PATH": true, "HTTP_PROXY": true, "HTTPS_PROXY": true, "NO_PROXY": true,
	"DOCKER_HOST": true, "KUBECONFIG": true, "RUNNER_BOOTSTRAP_RATE_LIMIT": true,
}

// Target names a variable uniquely once its owner is resolved to a numeric id:
// "project:42/RUNNER_TOKEN@*". It is what a runner's marker points back to.
func Target(owner OwnerKind, ownerID int64, key, scope string) string {
	if owner == OwnerInstance {
		return fmt.Sprintf("instance/%s", key)
	}
	return fmt.Sprintf("%s:%d/%s@%s", owner, ownerID, key, scope)
}
