package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// OwnerFlags name the runner's owner.
type OwnerFlags struct {
	ProjectID string `name:"project-id" group:"runner" placeholder:"ID|PATH" help:"Project that owns the runner: numeric id or full path (group/project)."`
	GroupID   string `name:"group-id" group:"runner" placeholder:"ID|PATH" help:"Group that owns the runner: numeric id or full path."`
}

// RunnerFlags are the runner attributes of POST /user/runners.
type RunnerFlags struct {
	RunnerType string `name:"runner-type" group:"runner" enum:"instance_type,group_type,project_type" default:"project_type" help:"instance_type, group_type or project_type."`
	OwnerFlags
	Description     string   `name:"description" group:"runner" help:"Runner description (also how the tool recognises runners it created for this variable)."`
	TagList         []string `name:"tag-list" group:"runner" sep:"," placeholder:"A,B" help:"Comma-separated tags."`
	RunUntagged     bool     `name:"run-untagged" group:"runner" negatable:"" default:"true" help:"Let the runner pick jobs without tags (--no-run-untagged needs --tag-list)."`
	Locked          bool     `name:"locked" group:"runner" negatable:"" help:"Lock the runner to its current projects."`
	AccessLevel     string   `name:"access-level" group:"runner" enum:"not_protected,ref_protected" default:"not_protected" help:"not_protected or ref_protected (only jobs on protected branches and tags)."`
	MaximumTimeout  int64    `name:"maximum-timeout" group:"runner" placeholder:"SECONDS" help:"Maximum job timeout in seconds (at least 600)."`
	Paused          bool     `name:"paused" group:"runner" negatable:"" help:"Create the runner paused."`
	MaintenanceNote string   `name:"maintenance-note" group:"runner" help:"Free-form note; the tool appends its own marker line."`

	TokenExpiresIn          time.Duration `name:"token-expires-in" group:"runner" placeholder:"DURATION" help:"Make the first token expire after this long, 5m to 360h (GitLab EE Premium 18.10+; refused elsewhere)."`
	TokenRotationDeadlineIn time.Duration `name:"token-rotation-deadline-in" group:"runner" placeholder:"DURATION" help:"Last moment to rotate the token by reset, at most --token-expires-in; rotate replaces the runner after it (GitLab EE Premium 18.10+)."`
}

// VariableTargetFlags name the variable that holds the token.
type VariableTargetFlags struct {
	VariableKey              string `name:"variable-key" group:"variable" default:"RUNNER_TOKEN" help:"Key of the CI/CD variable that holds the token."`
	VariableProject          string `name:"variable-project" group:"variable" placeholder:"ID|PATH" help:"The variable is in this project (default: the runner's project)."`
	VariableGroup            string `name:"variable-group" group:"variable" placeholder:"ID|PATH" help:"The variable is in this group (default: the runner's group)."`
	VariableInstance         bool   `name:"variable-instance" group:"variable" help:"The variable is an instance variable (admin; cannot be hidden, so stored masked)."`
	VariableEnvironmentScope string `name:"variable-environment-scope" group:"variable" default:"*" help:"Environment scope of the variable."`
}

// VariableFlags say where the token is stored and how.
type VariableFlags struct {
	VariableTargetFlags
	VariableProtected bool   `name:"variable-protected" group:"variable" negatable:"" default:"true" help:"Expose the variable only to protected branches and tags."`
	VariableHidden    bool   `name:"variable-hidden" group:"variable" negatable:"" default:"true" help:"Create the variable masked and hidden (its value can never be read back)."`
	VariableType      string `name:"variable-type" group:"variable" enum:"env_var,file" default:"env_var" help:"env_var or file."`
}

// apply sets the runner part of a spec.
func (f RunnerFlags) apply(s *spec.Spec) {
	s.Runner = spec.Runner{
		Type: spec.RunnerType(f.RunnerType), ProjectRef: strings.TrimSpace(f.ProjectID), GroupRef: strings.TrimSpace(f.GroupID),
		Description: f.Description, TagList: trimAll(f.TagList), RunUntagged: f.RunUntagged, Locked: f.Locked,
		AccessLevel: f.AccessLevel, MaximumTimeout: f.MaximumTimeout, Paused: f.Paused, MaintenanceNote: f.MaintenanceNote,
		TokenExpiresIn: f.TokenExpiresIn, TokenRotationDeadlineIn: f.TokenRotationDeadlineIn,
	}
}

// apply sets the variable part of a spec; the owner defaults to the runner's owner.
func (f VariableFlags) apply(s *spec.Spec) error {
	if err := f.VariableTargetFlags.apply(s); err != nil {
		return err
	}
	s.Variable.Protected, s.Variable.Hidden, s.Variable.Type = f.VariableProtected, f.VariableHidden, f.VariableType
	return nil
}

// apply sets the variable's key, owner and scope; the owner defaults to the runner's owner.
func (f VariableTargetFlags) apply(s *spec.Spec) error {
	if countSet(f.VariableProject != "", f.VariableGroup != "", f.VariableInstance) > 1 {
		return fail.Usagef("--variable-project, --variable-group and --variable-instance exclude each other: give at most one")
	}
	s.Variable.Key, s.Variable.EnvironmentScope = f.VariableKey, f.VariableEnvironmentScope
	switch {
	case f.VariableProject != "":
		s.Variable.Owner, s.Variable.OwnerRef = spec.OwnerProject, strings.TrimSpace(f.VariableProject)
	case f.VariableGroup != "":
		s.Variable.Owner, s.Variable.OwnerRef = spec.OwnerGroup, strings.TrimSpace(f.VariableGroup)
	case f.VariableInstance:
		s.Variable.Owner = spec.OwnerInstance
	}
	s.DefaultOwner()
	return nil
}

// targetSpec builds the spec of commands that address an existing variable (rotate, status,
// delete): --project-id or --group-id name the runner's owner and, by default, the variable's.
func targetSpec(o OwnerFlags, v VariableTargetFlags) (spec.Spec, error) {
	s := spec.New()
	if o.ProjectID != "" && o.GroupID != "" {
		return s, fail.Usagef("--project-id and --group-id exclude each other: give the one that owns the runner")
	}
	// The variable's owner defaults to these: a malformed one is named by the flag the user
	// typed, before the variable's check would name --variable-project.
	switch {
	case o.ProjectID != "":
		s.Runner.Type, s.Runner.ProjectRef = spec.ProjectType, strings.TrimSpace(o.ProjectID)
		if err := spec.CheckRef("--project-id", s.Runner.ProjectRef); err != nil {
			return s, err
		}
	case o.GroupID != "":
		s.Runner.Type, s.Runner.GroupRef = spec.GroupType, strings.TrimSpace(o.GroupID)
		if err := spec.CheckRef("--group-id", s.Runner.GroupRef); err != nil {
			return s, err
		}
	default:
		s.Runner.Type = spec.InstanceType
		if v.VariableProject == "" && v.VariableGroup == "" && !v.VariableInstance {
			return s, fail.Usagef("no variable named: give --project-id or --group-id (the variable's owner), or --variable-project, --variable-group or --variable-instance")
		}
	}
	err := v.apply(&s)
	return s, err
}

func trimAll(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

// line writes one formatted line; write errors on stdout are not actionable.
func line(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format+"\n", args...)
}

// serverLine is the one text line that names the GitLab a command talked to.
func serverLine(w io.Writer, g *gitlab.Info) {
	if g == nil {
		return
	}
	edition := "CE"
	if g.Enterprise {
		edition = "EE"
	}
	line(w, "gitlab: %s %s", g.Version, edition)
}

// noteLines prints the notes of a result, one per line.
func noteLines(w io.Writer, notes []string) {
	for _, n := range notes {
		line(w, "note: %s", n)
	}
}

// countSet counts the flags of a group that were given.
func countSet(set ...bool) int {
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	return n
}

// tokenFromEnv reads a runner token from the job's environment variable key. A file-type
// CI/CD variable (create --variable-type file) holds the path of a file with the token.
func tokenFromEnv(getenv func(string) string, key string) string {
	v := strings.TrimSpace(getenv(key))
	if v == "" || token.IsRunnerToken(v) {
		return v
	}
	if st, err := os.Stat(v); err == nil && st.Mode().IsRegular() && st.Size() < 64<<10 {
		if b, err := os.ReadFile(v); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return v
}
