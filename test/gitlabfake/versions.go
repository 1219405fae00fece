package gitlabfake

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The fake emulates one GitLab release, edition and licence tier at a time, following the
// version matrix (/work/shared/reference/gitlab-versions.md, "#n" below is its row). It keeps its
// own version arithmetic so that it never shares code with the client it tests.

// Licence tiers.
const (
	TierFree     = "free"
	TierPremium  = "premium"
	TierUltimate = "ultimate"
)

// NewestVersion is what the fake reports unless told otherwise.
const NewestVersion = "19.6.1"

type gitlabRelease struct {
	major, minor, patch int
	enterprise          bool
	tier                string
}

var releaseRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(-ee)?$`)

func parseRelease(version, tier string) (gitlabRelease, error) {
	m := releaseRE.FindStringSubmatch(version)
	if m == nil {
		return gitlabRelease{}, fmt.Errorf("gitlabfake: version %q is not X.Y.Z or X.Y.Z-ee", version)
	}
	r := gitlabRelease{enterprise: m[4] != "", tier: tier}
	r.major, _ = strconv.Atoi(m[1])
	r.minor, _ = strconv.Atoi(m[2])
	r.patch, _ = strconv.Atoi(m[3])
	switch tier {
	case TierFree, TierPremium, TierUltimate:
	case "":
		r.tier = TierFree
		if r.enterprise {
			r.tier = TierPremium
		}
	default:
		return gitlabRelease{}, fmt.Errorf("gitlabfake: tier %q is not free, premium or ultimate", tier)
	}
	if !r.enterprise && r.tier != TierFree {
		return gitlabRelease{}, fmt.Errorf("gitlabfake: a CE build (%s) has no %s licence; add -ee", version, tier)
	}
	return r, nil
}

// at reports whether the emulated release is major.minor or newer.
func (r gitlabRelease) at(major, minor int) bool {
	return r.major > major || (r.major == major && r.minor >= minor)
}

// licensed reports an EE build with a Premium or Ultimate licence.
func (r gitlabRelease) licensed() bool { return r.enterprise && r.tier != TierFree }

func (r gitlabRelease) String() string {
	s := fmt.Sprintf("%d.%d.%d", r.major, r.minor, r.patch)
	if r.enterprise {
		s += "-ee"
	}
	return s
}

// Option configures a server made by NewTest.
type Option func(*Server)

// GitLab makes the fake emulate a release ("16.5.0" for CE, "16.5.0-ee" for EE) and, for EE,
// a licence tier (TierFree, TierPremium or TierUltimate; "" is Premium for EE). It panics on a
// malformed version, as a test bug.
func GitLab(version, tier string) Option {
	return func(s *Server) {
		if err := s.SetGitLab(version, tier); err != nil {
			panic(err)
		}
	}
}

// SetGitLab makes the fake emulate a release, edition and tier (see GitLab).
func (s *Server) SetGitLab(version, tier string) error {
	r, err := parseRelease(version, tier)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release = r
	return nil
}

// Release is the emulated version string, e.g. "17.3.2-ee".
func (s *Server) Release() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.release.String()
}

// groupScopesDropped is #17: EE without a Premium licence strips environment_scope from group
// variables. A CE build does not (its helper is a no-op).
func (s *Server) groupScopesDropped() bool {
	return s.groupScopesUnlicensed || (s.release.enterprise && s.release.tier == TierFree)
}

// scopeExists is #3 and #10: before 16.2 there is no create_runner scope and before 17.1 no
// manage_runner scope, so a token holding one is not accepted for it.
func (s *Server) scopeExists(scope string) bool {
	switch scope {
	case "create_runner":
		return s.release.at(16, 2)
	case "manage_runner":
		return s.release.at(17, 1)
	}
	return true
}

// routeExists is where a release lacks a whole route (#9: managers from 17.1).
func (s *Server) routeExists(rt *route) bool {
	return rt.since == [2]int{} || s.release.at(rt.since[0], rt.since[1])
}

// GET /metadata and GET /version (#19): version, revision, kas, enterprise.
func (s *Server) getMetadata(c *call) {
	c.resp.json(http.StatusOK, map[string]any{
		"version":    s.release.String(),
		"revision":   "f4k3r3v1510n",
		"kas":        map[string]any{"enabled": false, "externalUrl": nil, "version": nil},
		"enterprise": s.release.enterprise,
	})
}

// GET /user: the token's user.
func (s *Server) getCurrentUser(c *call) {
	out := map[string]any{"id": c.user.id, "username": c.user.username, "name": c.user.username, "state": "active"}
	if c.user.admin {
		out["is_admin"] = true
	}
	c.resp.json(http.StatusOK, out)
}

// GET /personal_access_tokens/self: any scope may read its own token.
func (s *Server) getTokenSelf(c *call) {
	t := c.token
	var exp any
	if t.expiresAt != nil {
		exp = t.expiresAt.UTC().Format("2006-01-02")
	}
	c.resp.json(http.StatusOK, map[string]any{
		"id": t.id, "name": t.name, "revoked": t.revoked, "created_at": timeJSON(s.now()),
		"scopes": slices.Clone(t.scopes), "user_id": t.userID, "last_used_at": timeJSON(s.now()),
		"active": !t.revoked && !t.expired, "expires_at": exp,
	})
}

// GET /projects/:id/members/all/:user_id and GET /groups/:id/members/all/:user_id: the
// effective (inherited included) role; 404 when there is none.
func (s *Server) getMemberAll(c *call) {
	uid, err := strconv.ParseInt(c.args[1], 10, 64)
	u := s.userByID(uid)
	if err != nil || u == nil {
		c.notFound("Member")
		return
	}
	var role Role
	if c.route.owner == ownerGroup {
		g := s.userGroup(c)
		if g == nil {
			return
		}
		role = s.groupRole(u, g)
	} else {
		p := s.userProject(c)
		if p == nil {
			return
		}
		role = s.projectRole(u, p)
	}
	if role == 0 {
		c.notFound("Member")
		return
	}
	c.resp.json(http.StatusOK, map[string]any{"id": u.id, "username": u.username, "state": "active", "access_level": int(role)})
}

// TokenExpiresOn makes AddToken create a token with an expiry date.
func TokenExpiresOn(t time.Time) TokenOption { return func(a *accessToken) { a.expiresAt = &t } }

// TokenName names a token made by AddToken (default "runner-bootstrap").
func TokenName(name string) TokenOption {
	return func(a *accessToken) { a.name = strings.TrimSpace(name) }
}

// createExpiry is the EE-only token_expires_at and token_rotation_deadline of POST
// /user/runners (#5); both nil when the release drops them.
type createExpiry struct {
	expiresAt, deadline *time.Time
	deadlineSent        bool
}

// readExpiryParams reads the expiry params where they are declared: EE with a Premium licence
// from 18.10 (the CE create_runner_params_ee is empty, so CE and older releases drop them).
func (s *Server) readExpiryParams(v *validator) createExpiry {
	var e createExpiry
	if !s.release.licensed() || !s.release.at(18, 10) {
		return e
	}
	read := func(name string) *time.Time {
		raw, ok := v.str(name)
		if !ok || raw == "" {
			return nil
		}
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			v.fail(name + " is invalid")
			return nil
		}
		t = t.UTC()
		return &t
	}
	e.expiresAt = read("token_expires_at")
	e.deadline = read("token_rotation_deadline")
	e.deadlineSent = e.deadline != nil
	return e
}

// checkExpiry is EE CreateRunnerService's validation: 5 minutes to 15 days (capped by the
// runner token expiration setting), and a deadline not in the past and not after the expiry.
func (s *Server) checkExpiry(e createExpiry) string {
	now := s.now()
	if e.deadlineSent && e.expiresAt == nil {
		return "token_expires_at is required when token_rotation_deadline is specified"
	}
	if e.expiresAt == nil {
		return ""
	}
	max := 15 * 24 * time.Hour
	if s.runnerTokenExpiration > 0 && s.runnerTokenExpiration < max {
		max = s.runnerTokenExpiration
	}
	switch {
	case e.expiresAt.Before(now.Add(5 * time.Minute)):
		return "token_expires_at must be at least 5 minutes in the future"
	case e.expiresAt.After(now.Add(max)):
		return "token_expires_at is too far in the future (maximum is " + now.Add(max).Format(time.RFC3339) + ")"
	case e.deadline != nil && e.deadline.Before(now):
		return "token_rotation_deadline cannot be in the past"
	case e.deadline != nil && e.deadline.After(*e.expiresAt):
		return "token_rotation_deadline must be less than or equal to token_expires_at"
	}
	return ""
}
