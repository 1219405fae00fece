package gitlab

import (
	"fmt"
	"slices"
	"strings"
)

// Capability is one thing GitLab does from some release on, that runner-bootstrap relies on or
// adapts to. Every version-dependent decision of the tool asks Server.Has about one of these,
// so that the table below is the only place that knows versions.
type Capability string

// The capabilities. The values are stable: audit and check print them.
const (
	// CapCreateRunnerScope: the create_runner token scope exists (else POST /user/runners needs api).
	CapCreateRunnerScope Capability = "create_runner_scope"
	// CapVariableDescription: project and group variables keep a description.
	CapVariableDescription Capability = "variable_description"
	// CapInstanceVariableDescription: instance variables keep a description.
	CapInstanceVariableDescription Capability = "instance_variable_description"
	// CapMaskedAndHidden: masked_and_hidden is accepted on create (project and group) and stores hidden.
	CapMaskedAndHidden Capability = "masked_and_hidden"
	// CapHiddenEnforced: a hidden variable's value is no longer returned by the API or UI.
	CapHiddenEnforced Capability = "hidden_enforced"
	// CapGroupVariableFilterUpdate: PUT /groups/:id/variables/:key honours filter[environment_scope].
	CapGroupVariableFilterUpdate Capability = "group_variable_filter_update"
	// CapRunnerManagers: GET /runners/:id/managers exists.
	CapRunnerManagers Capability = "runner_managers"
	// CapManageRunnerScope: the manage_runner token scope exists.
	CapManageRunnerScope Capability = "manage_runner_scope"
	// CapTokenExpiryAtCreate: POST /user/runners honours token_expires_at and
	// token_rotation_deadline (EE with a Premium or Ultimate licence; the licence cannot be
	// read without admin rights, so an EE build is assumed to have it and the answer checked).
	CapTokenExpiryAtCreate Capability = "token_expiry_at_create"
	// CapRunnerTokenExpiryRead: GET /runners/:id reports token_expires_at.
	CapRunnerTokenExpiryRead Capability = "runner_token_expiry_read"
	// CapRunnerCreationMethod: GraphQL CiRunner.creationMethod (an experiment from 17.0) says
	// whether a runner was registered with a registration token.
	CapRunnerCreationMethod Capability = "runner_creation_method"
)

// CapabilityRow is one row of the capability table: from which release (and edition) GitLab
// does something, which row of the version matrix (docs: reference/gitlab-versions.md) says
// so, and what runner-bootstrap does on an older server.
type CapabilityRow struct {
	Capability Capability
	// Feature names it for people (the README's compatibility table).
	Feature string
	// Since is the first release that has it.
	Since Version
	// Enterprise is true when only EE builds have it; Tier names the licence it also needs.
	Enterprise bool
	Tier       string
	// MatrixRow cites the version matrix; Inferred marks a release bracketed, not pinned.
	MatrixRow string
	Inferred  bool
	// Older says what runner-bootstrap does where the capability is missing.
	Older string
}

// capabilityTable is the one place that knows GitLab versions.
var capabilityTable = []CapabilityRow{
	{
		Capability: CapCreateRunnerScope, Feature: "`create_runner` token scope", Since: V(16, 2, 0),
		MatrixRow: "#3", Inferred: true,
		Older: "`POST /user/runners` needs the `api` scope; `check` says so",
	},
	{
		Capability: CapVariableDescription, Feature: "Project and group variable `description`", Since: V(16, 2, 0),
		MatrixRow: "#11",
		Older:     "refused before any write: the description is the only link from the variable to its runner",
	},
	{
		Capability: CapInstanceVariableDescription, Feature: "Instance variable `description`", Since: V(16, 8, 0),
		MatrixRow: "#11",
		Older:     "`--variable-instance` refused before any write (same reason)",
	},
	{
		Capability: CapMaskedAndHidden, Feature: "`masked_and_hidden` on create (project, group)", Since: V(16, 11, 0),
		MatrixRow: "#12, #13",
		Older:     "the token is stored masked and protected, not hidden; a note says so",
	},
	{
		Capability: CapHiddenEnforced, Feature: "Hidden values not returned by the API", Since: V(17, 4, 0),
		MatrixRow: "#12",
		Older:     "stored hidden, but GitLab still returns the value until `ci_hidden_variables` is on; a note says so",
	},
	{
		Capability: CapGroupVariableFilterUpdate, Feature: "`filter[environment_scope]` on group variable `PUT`", Since: V(16, 9, 0),
		MatrixRow: "#16",
		Older:     "a scoped group variable that shares its key with another scope is refused (GitLab would update an arbitrary one)",
	},
	{
		Capability: CapRunnerManagers, Feature: "`GET /runners/:id/managers`", Since: V(17, 1, 0),
		MatrixRow: "#9", Inferred: true,
		Older: "`status` says the managers are unknown on this version (exit code unchanged)",
	},
	{
		Capability: CapManageRunnerScope, Feature: "`manage_runner` token scope", Since: V(17, 1, 0),
		MatrixRow: "#10",
		Older:     "runner reads, updates, resets and deletes need the `api` scope",
	},
	{
		Capability: CapTokenExpiryAtCreate, Feature: "Token expiry and rotation deadline chosen at creation", Since: V(18, 10, 0),
		Enterprise: true, Tier: "Premium", MatrixRow: "#5", Inferred: true,
		Older: "`--token-expires-in` / `--token-rotation-deadline-in` refused (exit 2) before any write",
	},
	{
		Capability: CapRunnerTokenExpiryRead, Feature: "`token_expires_at` in `GET /runners/:id`", Since: V(19, 0, 0),
		MatrixRow: "#8", Inferred: true,
		Older: "the expiry recorded when the token was stored is used; a rotation made outside the tool is not detected",
	},
	{
		Capability: CapRunnerCreationMethod, Feature: "GraphQL `CiRunner.creationMethod`", Since: V(17, 0, 0),
		MatrixRow: "#8 (REST has no creation method; GraphQL since 17.0: field-2026 §1.3)",
		Older:     "`audit` reports how each runner was created as `unknown`",
	},
}

// Capabilities returns the table, oldest first as written.
func Capabilities() []CapabilityRow { return slices.Clone(capabilityTable) }

func capabilityRow(c Capability) CapabilityRow {
	for _, r := range capabilityTable {
		if r.Capability == c {
			return r
		}
	}
	panic(fmt.Sprintf("gitlab: capability %q is not in the table", c))
}

// Has reports whether the server has c. A server whose version is unknown is assumed to have
// everything: the tool then checks GitLab's answer after each write instead, which is the only
// safe test anyway (a feature flag can turn a feature off on any version).
func (s Server) Has(c Capability) bool {
	r := capabilityRow(c)
	if !s.Known() {
		return true
	}
	if r.Enterprise && !s.Enterprise {
		return false
	}
	return s.Version.AtLeast(r.Since)
}

// Requirement names what c needs, for sentences: "GitLab 16.2" or "GitLab 18.10 EE (Premium)".
func Requirement(c Capability) string {
	r := capabilityRow(c)
	s := "GitLab " + r.Since.MinorString()
	if r.Enterprise {
		s += " EE"
		if r.Tier != "" {
			s += " (" + r.Tier + ")"
		}
	}
	return s
}

// CompatibilityTable renders the table as Markdown, for the README (a test keeps the two equal).
func CompatibilityTable() string {
	var b strings.Builder
	b.WriteString("| Feature | GitLab | Matrix row | On an older GitLab, runner-bootstrap… |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, r := range capabilityTable {
		since := r.Since.MinorString()
		if r.Enterprise {
			since += " EE " + r.Tier
		}
		row := r.MatrixRow
		if r.Inferred {
			row += " (inferred)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.Feature, since, row, r.Older)
	}
	return b.String()
}
