package audit

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// The finding ids (contract.md: stable, never renamed).
const (
	IDRegistrationTokensInstance = "registration-tokens-enabled-instance"
	IDRegistrationTokens         = "registration-tokens-enabled"
	IDUsesRegistrationToken      = "runner-uses-registration-token"
	IDTokenExpired               = "token-expired"
	IDTokenExpiresSoon           = "token-expires-soon"
	IDTokenStale                 = "token-stale"
	IDVariableNotMasked          = "variable-not-masked"
	IDVariableNotHidden          = "variable-not-hidden"
	IDVariableNotProtected       = "variable-not-protected"
	IDSharedToken                = "shared-token"
	IDNeverContacted             = "never-contacted"
	IDStaleRunner                = "stale-runner"
	IDOrphanRunner               = "orphan-runner"
	IDVersionOutdated            = "runner-version-outdated"
	// IDRunnerMissing is an addition: a managed variable records a runner that is gone.
	IDRunnerMissing = "runner-missing"
)

const (
	staleAfter        = 7 * 24 * time.Hour // Ci::Runner::STALE_TIMEOUT
	neverContactedAge = 24 * time.Hour
)

// managedVar is a variable this tool wrote, with its record.
type managedVar struct {
	owner owner
	v     gitlab.Variable
	rec   record.Variable
}

func (m managedVar) name() string { return varName(m.owner, m.v) }

func (m managedVar) target() string {
	return spec.Target(m.owner.kind, m.owner.id, m.v.Key, m.v.Scope)
}

func varName(o owner, v gitlab.Variable) string {
	if o.kind == spec.OwnerInstance {
		return "instance variable " + v.Key
	}
	return fmt.Sprintf("%s variable %s (scope %s)", o.name(), v.Key, v.Scope)
}

// managedVars lists the managed variables in scope, in owner order.
func (s *scan) managedVars(owners []owner) []managedVar {
	var out []managedVar
	for _, o := range owners {
		for _, v := range s.vars[o] {
			if rec, ok := record.ParseVariable(v.Description); ok {
				out = append(out, managedVar{owner: o, v: v, rec: rec})
			}
		}
	}
	return out
}

// readTargets reads the variables named by the markers of runners in scope that the scope's
// own lists did not show (a runner whose variable lives elsewhere), for the orphan check.
func (s *scan) readTargets(ctx context.Context, owners []owner, in []int64) map[string]*record.Variable {
	targets := map[string]*record.Variable{}
	for _, m := range s.managedVars(owners) {
		rec := m.rec
		targets[m.target()] = &rec
	}
	for _, id := range in {
		_, mk, ok := record.ParseNote(s.details[id].MaintenanceNote)
		if !ok {
			continue
		}
		if _, known := targets[mk.Target]; known {
			continue
		}
		targets[mk.Target] = nil
		ref, ok := lifecycle.ParseTarget(mk.Target)
		if !ok {
			continue
		}
		v, err := s.api.GetVariable(ctx, ref)
		switch {
		case err == nil:
			if rec, ok := record.ParseVariable(v.Description); ok {
				targets[mk.Target] = &rec
			}
		case !gitlab.IsNotFound(err):
			s.note("Could not read %s to check runner %d: %v.", ref, id, err)
			delete(targets, mk.Target)
		}
	}
	return targets
}

// build turns what was read into findings and the runner table.
func (s *scan) build(ctx context.Context, owners []owner, in []int64) Report {
	targets := s.readTargets(ctx, owners, in)
	var fs []Finding
	add := func(f Finding) { fs = append(fs, f) }

	if st := s.settings; st != nil && st.AllowRegistrationToken != nil && *st.AllowRegistrationToken {
		add(Finding{ID: IDRegistrationTokensInstance, Severity: High, Object: "the instance",
			Message: "The instance still allows runner registration tokens (allow_runner_registration_token is true), so gitlab-runner register --registration-token keeps working in every group that does not turn it off.",
			Fix:     "Once no runner depends on them, turn off Admin > Settings > CI/CD > Runners > \"Allow runner registration token\" (disabled by default since GitLab 17.0, removed in 20.0); migrate the remaining runners with runner-bootstrap migrate."})
	}
	var hidden []string
	for _, o := range owners {
		st, read := s.regState[o]
		switch {
		case !read || o.kind == spec.OwnerInstance:
		case st == gitlab.RegistrationTokenEnabled:
			add(Finding{ID: IDRegistrationTokens, Severity: High, Object: o.name(),
				Message: fmt.Sprintf("%s still has a runner registration token: anyone holding it can register runners there the legacy way.", capitalize(o.name())),
				Fix:     "Create runners with runner-bootstrap create (or migrate existing registrations with runner-bootstrap migrate), then turn off \"Allow members of projects and groups to create runners with runner registration tokens\" in the top-level group's Settings > CI/CD > Runners."})
		case st == gitlab.RegistrationTokenHidden:
			hidden = append(hidden, o.name())
		}
	}
	if len(hidden) > 0 {
		s.note("Whether these still have a registration token could not be seen (GitLab shows it to project Maintainers, group Owners and administrators only): %s.", strings.Join(hidden, ", "))
	}

	managed := s.managedVars(owners)
	varOf := map[int64]managedVar{}
	for _, m := range managed {
		varOf[m.rec.RunnerID] = m
		fs = append(fs, s.variableFindings(m)...)
	}
	for _, o := range owners {
		for _, v := range s.vars[o] {
			if _, isManaged := record.ParseVariable(v.Description); isManaged || !v.HoldsRunnerToken || v.Masked {
				continue
			}
			add(Finding{ID: IDVariableNotMasked, Severity: Critical, Object: varName(o, v),
				Message: fmt.Sprintf("%s holds a runner authentication token (glrt-) and is not masked, so the token shows in job logs and to everyone who can read the variable.", capitalize(varName(o, v))),
				Fix:     "Take the runner over with a new token stored masked and hidden: runner-bootstrap adopt --runner-id N with the variable flags of create and another --variable-key (adopt never overwrites a variable it did not write), then delete this variable; the token it holds stops working at adopt's reset."})
		}
	}

	var runners []Runner
	for _, id := range in {
		d := s.details[id]
		r := s.runnerRow(d, varOf)
		runners = append(runners, r)
		fs = append(fs, s.runnerFindings(d, r, targets)...)
	}
	sortFindings(fs)
	rep := Report{
		GitLab:      *s.opts.Server.Info(),
		GeneratedAt: s.now,
		WarnWithin:  flagDuration(s.opts.WarnWithin),
		Findings:    append([]Finding{}, fs...),
		Runners:     append([]Runner{}, runners...),
		Notes:       append([]string{}, s.notes...),
	}
	for _, f := range fs {
		switch f.Severity {
		case Critical:
			rep.Summary.Critical++
		case High:
			rep.Summary.High++
		case Medium:
			rep.Summary.Medium++
		default:
			rep.Summary.Low++
		}
	}
	return rep
}

func (s *scan) variableFindings(m managedVar) []Finding {
	var fs []Finding
	name := m.name()
	obj := func(id string, sev Severity, msg, fix string) {
		fs = append(fs, Finding{ID: id, Severity: sev, Object: name, Message: msg, Fix: fix, RunnerID: m.rec.RunnerID})
	}
	runner := s.details[m.rec.RunnerID]
	switch {
	case s.missing[m.rec.RunnerID]:
		obj(IDRunnerMissing, High, fmt.Sprintf("%s records runner %d, which no longer exists, so every manager deployed from it is disconnected.", capitalize(name), m.rec.RunnerID),
			"runner-bootstrap create with the same flags creates a replacement and stores its token.")
	default:
		if reason, stale := lifecycle.StaleReason(m.rec, runner); stale {
			obj(IDTokenStale, Critical, fmt.Sprintf("The token stored in %s is no longer runner %d's: %s.", name, m.rec.RunnerID, reason),
				"runner-bootstrap rotate resets the token and stores the new one; then redeploy the runner's managers.")
			break
		}
		if exp := m.rec.TokenExpiresAt; exp != nil {
			left := exp.Sub(s.now)
			switch {
			case left <= 0:
				obj(IDTokenExpired, Critical, fmt.Sprintf("The token of runner %d stored in %s expired at %s; its managers can no longer fetch jobs.", m.rec.RunnerID, name, exp.UTC().Format(time.RFC3339)),
					"runner-bootstrap rotate issues a new token (it works on expired ones); schedule the rotate-token component so it does not happen again.")
			case left <= s.opts.WarnWithin:
				obj(IDTokenExpiresSoon, High, fmt.Sprintf("The token of runner %d stored in %s expires in %s (%s), within --warn-within %s.", m.rec.RunnerID, name, roundDuration(left), exp.UTC().Format(time.RFC3339), flagDuration(s.opts.WarnWithin)),
					"runner-bootstrap rotate --if-expiring-within "+flagDuration(s.opts.WarnWithin)+" rotates it; the rotate-token component does it on a schedule.")
			}
		}
	}
	if !m.v.Masked {
		obj(IDVariableNotMasked, Critical, fmt.Sprintf("%s holds a runner token but is not masked, so it can show in job logs.", capitalize(name)),
			"runner-bootstrap delete, then create again, stores it masked and hidden; or mask it in Settings > CI/CD > Variables.")
	}
	if !m.v.Hidden && m.owner.kind != spec.OwnerInstance && s.opts.Server.Has(gitlab.CapMaskedAndHidden) {
		obj(IDVariableNotHidden, Medium, fmt.Sprintf("%s is not hidden, so project Maintainers and group Owners can read the token in the UI and API.", capitalize(name)),
			"GitLab cannot hide an existing variable: runner-bootstrap delete, then create again, stores it hidden.")
	}
	if !m.v.Protected {
		obj(IDVariableNotProtected, Medium, fmt.Sprintf("%s is not protected, so jobs on any branch, including unreviewed ones, can read the token.", capitalize(name)),
			"Protect it in Settings > CI/CD > Variables, or recreate it with runner-bootstrap create (protected by default).")
	}
	return fs
}

// runnerRow is the report's view of one runner.
func (s *scan) runnerRow(d *gitlab.Runner, varOf map[int64]managedVar) Runner {
	r := Runner{ID: d.ID, RunnerType: d.Type, Description: d.Description, Owner: s.ownerName(d), Status: d.Status,
		ContactedAt: d.ContactedAt, CreationMethod: "unknown", Managers: []gitlab.Manager{}, Version: d.Version, CreatedAt: d.CreatedAt}
	if o, ok := s.origins[d.ID]; ok {
		if o.CreationMethod != "" {
			r.CreationMethod = o.CreationMethod
		}
		r.CreatedBy = o.CreatedBy
		if o.CreatedAt != nil {
			r.CreatedAt = o.CreatedAt
		}
	}
	if ms, ok := s.managers[d.ID]; ok && ms != nil {
		r.Managers = lifecycle.HostManagers(ms)
		r.managersKnown = true
	}
	for _, m := range r.Managers {
		if compareVersions(m.Version, r.Version) > 0 {
			r.Version = m.Version
		}
	}
	_, mk, marked := record.ParseNote(d.MaintenanceNote)
	if r.CreatedAt == nil && marked && !mk.CreatedAt.IsZero() {
		t := mk.CreatedAt
		r.CreatedAt = &t
	}
	if m, ok := varOf[d.ID]; ok {
		name := m.name()
		r.Managed, r.Variable, r.TokenExpiresAt = true, &name, m.rec.TokenExpiresAt
	} else if marked {
		r.Managed = true
	}
	if d.TokenExpiresAt != nil {
		r.TokenExpiresAt = d.TokenExpiresAt
	}
	return r
}

func (s *scan) ownerName(d *gitlab.Runner) string {
	switch d.Type {
	case string(spec.GroupType):
		if len(d.GroupIDs) > 0 {
			return s.pathOf(spec.OwnerGroup, d.GroupIDs[0])
		}
	case string(spec.ProjectType):
		if len(d.ProjectIDs) > 0 {
			return s.pathOf(spec.OwnerProject, d.ProjectIDs[0])
		}
	default:
		return "the instance"
	}
	return "unknown"
}

func (s *scan) pathOf(kind spec.OwnerKind, id int64) string {
	for o := range s.vars {
		if o.kind == kind && o.id == id {
			return o.name()
		}
	}
	for _, o := range s.listed {
		if o.kind == kind && o.id == id {
			return o.name()
		}
	}
	return fmt.Sprintf("%s %d", kind, id)
}

func (s *scan) runnerFindings(d *gitlab.Runner, r Runner, targets map[string]*record.Variable) []Finding {
	var fs []Finding
	obj := fmt.Sprintf("runner %d", d.ID)
	if d.Description != "" {
		obj = fmt.Sprintf("runner %d (%s)", d.ID, d.Description)
	}
	add := func(id string, sev Severity, msg, fix string) {
		fs = append(fs, Finding{ID: id, Severity: sev, Object: obj, Message: msg, Fix: fix, RunnerID: d.ID})
	}
	if r.CreationMethod == "registration_token" {
		add(IDUsesRegistrationToken, High, fmt.Sprintf("Runner %d (%s of %s) was registered with a registration token, which GitLab disables by default since 17.0 and removes in 20.0; re-registering it the same way will fail.", d.ID, d.Type, r.Owner),
			"runner-bootstrap migrate --helm-values FILE (or --register-command) creates the equivalent runner with the new workflow and stores its token; delete this one once its managers are redeployed.")
	}
	if n := len(r.Managers); n > 1 {
		ids := make([]string, 0, n)
		for _, m := range r.Managers {
			ids = append(ids, m.SystemID)
		}
		add(IDSharedToken, Medium, fmt.Sprintf("%d managers use runner %d's token (%s); after a rotation only the first to reconnect gets the new token, the others stay disconnected.", n, d.ID, strings.Join(ids, ", ")),
			"Deploy every manager from the one variable (runner-bootstrap render) and redeploy them all after runner-bootstrap rotate; or give each host its own runner with runner-bootstrap create.")
	}
	// GitLab records a manager for every host that uses the token (and drops it after 7 days
	// without contact), while the runner's own contacted_at also moves when runner-bootstrap
	// checks a stored token (POST /runners/verify): with the managers known, none means no host.
	noHost := d.ContactedAt == nil || (r.managersKnown && len(r.Managers) == 0 && s.now.Sub(*d.ContactedAt) <= staleAfter)
	switch {
	case noHost && r.CreatedAt != nil && s.now.Sub(*r.CreatedAt) > neverContactedAge:
		add(IDNeverContacted, Medium, fmt.Sprintf("Runner %d was created %s ago and has never been contacted; GitLab counts it stale after 7 days and may delete it where stale-runner cleanup is on.", d.ID, roundDuration(s.now.Sub(*r.CreatedAt))),
			"Deploy a manager with its token (runner-bootstrap render), or delete it: runner-bootstrap prune --older-than 168h removes the ones this tool created.")
	case d.ContactedAt != nil && s.now.Sub(*d.ContactedAt) > staleAfter:
		add(IDStaleRunner, Low, fmt.Sprintf("Runner %d has not been contacted for %s (last at %s).", d.ID, roundDuration(s.now.Sub(*d.ContactedAt)), d.ContactedAt.UTC().Format(time.RFC3339)),
			"Find out whether its hosts still exist; runner-bootstrap prune --older-than 168h deletes the ones this tool created.")
	}
	if _, mk, ok := record.ParseNote(d.MaintenanceNote); ok {
		rec, known := targets[mk.Target]
		if known && (rec == nil || rec.RunnerID != d.ID) {
			add(IDOrphanRunner, Medium, fmt.Sprintf("Runner %d was created by runner-bootstrap for %s, which no longer names it, so nothing deploys its token.", d.ID, mk.Target),
				"runner-bootstrap prune deletes runners this tool created that no variable references.")
		}
	}
	if oldest := oldestSupported(s.opts.Server); oldest != "" {
		var old []string
		for _, m := range r.Managers {
			if m.Version != "" && compareVersions(m.Version, oldest) < 0 {
				old = append(old, m.SystemID+" "+m.Version)
			}
		}
		if len(old) > 0 {
			add(IDVersionOutdated, Low, fmt.Sprintf("Runner %d has managers on gitlab-runner older than %s, the oldest release GitLab %s still supports: %s.", d.ID, oldest, s.opts.Server.Version, strings.Join(old, ", ")),
				"Upgrade gitlab-runner on these hosts (the Helm chart's image tag, or the package) to the server's minor version.")
		}
	}
	return fs
}

// oldestSupported is the oldest gitlab-runner minor GitLab still supports next to a server
// version: the server's minor and the two before it (GitLab's maintenance policy; a major
// has minors .0 to .11). "" when the server version is unknown.
func oldestSupported(server gitlab.Server) string {
	if !server.Known() {
		return ""
	}
	major, minor := server.Version.Major, server.Version.Minor-2
	if minor < 0 {
		major, minor = major-1, minor+12
	}
	return fmt.Sprintf("%d.%d.0", major, minor)
}

func parseVersion(s string) []int {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(s, "-~+ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil
	}
	out := make([]int, 3)
	for i := 0; i < 3 && i < len(parts); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return nil
		}
		out[i] = n
	}
	return out
}

// compareVersions compares two x.y.z versions; an unparsable one sorts first.
func compareVersions(a, b string) int {
	va, vb := parseVersion(a), parseVersion(b)
	switch {
	case va == nil && vb == nil:
		return 0
	case va == nil:
		return -1
	case vb == nil:
		return 1
	}
	return slices.Compare(va, vb)
}

// roundDuration is a duration in words people read at a glance: "10 days", "5 hours".
func roundDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Round(24*time.Hour)/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Round(time.Hour)/time.Hour))
	}
	return fmt.Sprintf("%d minutes", int(d.Round(time.Minute)/time.Minute))
}

// flagDuration writes a duration as a flag value: 7d, not 168h0m0s.
func flagDuration(d time.Duration) string { return duration.Duration(d).String() }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
