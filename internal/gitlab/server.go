package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// Version is a GitLab release, major.minor.patch. The zero Version means "not known".
type Version struct {
	Major, Minor, Patch int
}

// V builds a Version.
func V(major, minor, patch int) Version { return Version{major, minor, patch} }

var versionRE = regexp.MustCompile(`^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$`)

// ParseVersion reads what /metadata and /version report: "X.Y.Z", optionally followed by a
// pre-release part ("-rc1", "-pre") and "-ee" on an Enterprise build. ee says whether the
// string ends in -ee.
func ParseVersion(s string) (v Version, ee bool, err error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, false, fmt.Errorf("GitLab reported the version %q, which is not of the form 17.3.2 or 17.3.2-ee", s)
	}
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	suffix := strings.ToLower(m[4])
	ee = suffix == "ee" || strings.HasSuffix(suffix, "-ee")
	return v, ee, nil
}

// Less reports whether v is an older release than o.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// AtLeast reports whether v is o or newer.
func (v Version) AtLeast(o Version) bool { return !v.Less(o) }

// IsZero reports whether the version is unknown.
func (v Version) IsZero() bool { return v == Version{} }

// String is "17.3.2"; "17.3" for a version given without patch level.
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// MinorString is "17.3", how GitLab names the release a feature shipped in.
func (v Version) MinorString() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// How the server's version was learned.
const (
	SourceMetadata = "metadata" // GET /metadata
	SourceVersion  = "version"  // GET /version (the deprecated twin of /metadata)
	SourceProbe    = "probe"    // neither was allowed: GitLab's answers are checked instead
)

// Server is what a command knows about the GitLab it talks to. It is learned once per run
// (Client.Server) and decides, with the capability table in capabilities.go, how each write is
// shaped and which notes the output carries.
type Server struct {
	// Version is the release; zero when neither /metadata nor /version could be read.
	Version Version
	// Raw is the version string as GitLab reported it ("17.3.2-ee").
	Raw string
	// Enterprise is true for an EE build. It says nothing about the licensed tier (Free,
	// Premium, Ultimate), which only an administrator can read.
	Enterprise bool
	// Source says how the version was learned: SourceMetadata, SourceVersion or SourceProbe.
	Source string
	// ClockOffset is the server's clock minus this machine's, from the Date header of the
	// answer (whole seconds; 0 when unknown). Times sent to GitLab that it checks against its
	// own clock (a token expiry at least 5 minutes ahead) are computed on GitLab's clock.
	ClockOffset time.Duration
}

// Now is the server's time, by this machine's clock and the measured offset.
func (s Server) Now(local time.Time) time.Time { return local.Add(s.ClockOffset) }

// Known reports whether the version was read. When it was not, every capability is assumed
// present and what GitLab answers is checked after each write instead (see Has).
func (s Server) Known() bool { return !s.Version.IsZero() }

// Edition is "EE" or "CE" (unknown counts as CE: the build only says EE when it is).
func (s Server) Edition() string {
	if s.Enterprise {
		return "EE"
	}
	return "CE"
}

// String names the server in one line of text output: "GitLab 17.3.2 EE".
func (s Server) String() string {
	if !s.Known() {
		return "GitLab of unknown version (the access token may not read /metadata; GitLab's answers are checked instead)"
	}
	return fmt.Sprintf("GitLab %s %s", s.Version, s.Edition())
}

// Info is the `gitlab` object of every command's JSON output (contract, second round).
type Info struct {
	Version    string `json:"version"`
	Enterprise bool   `json:"enterprise"`
}

// Info returns the JSON form; the version is "unknown" when it could not be read.
func (s Server) Info() *Info {
	v := "unknown"
	if s.Known() {
		v = s.Version.String()
	}
	return &Info{Version: v, Enterprise: s.Enterprise}
}

// metadataBody is the part of GET /metadata (and /version) the tool reads.
type metadataBody struct {
	Version    string `json:"version"`
	Revision   string `json:"revision"`
	Enterprise *bool  `json:"enterprise"`
}

// Server learns the server's version and edition, once per client: GET /metadata (15.2+),
// else GET /version (deprecated but still served). Both need the api, read_api or read_user
// scope; a token refused both (403) gets a Server whose version is unknown (SourceProbe), and
// callers then rely on checking GitLab's answers. A refused token (401) or an unreachable
// server is an error: nothing else would work either.
func (c *Client) Server(ctx context.Context) (Server, error) {
	c.serverMu.Lock()
	defer c.serverMu.Unlock()
	if c.server != nil {
		return *c.server, nil
	}
	s, err := c.readServer(ctx)
	if err != nil {
		return Server{}, err
	}
	c.server = &s
	return s, nil
}

// SetServer fixes what Server returns, for tests that drive the client against a stub.
func (c *Client) SetServer(s Server) {
	c.serverMu.Lock()
	defer c.serverMu.Unlock()
	c.server = &s
}

func (c *Client) readServer(ctx context.Context) (Server, error) {
	o := op{action: "read the GitLab version (GET /metadata)", object: "/metadata", role: "the api, read_api or read_user scope"}
	for _, src := range []string{SourceMetadata, SourceVersion} {
		req, err := c.gl.NewRequest(http.MethodGet, src, nil, c.idem(ctx))
		if err != nil {
			return Server{}, err
		}
		var body metadataBody
		sent := time.Now()
		resp, err := c.gl.Do(req, &body)
		switch code := StatusCode(wrap(ctx, o, err)); {
		case err == nil:
			var offset time.Duration
			if resp != nil {
				if d, derr := http.ParseTime(resp.Header.Get("Date")); derr == nil {
					// Only a skew beyond the header's one-second precision counts.
					if off := d.Sub(sent.Truncate(time.Second)); off.Abs() > 2*time.Second {
						offset = off.Truncate(time.Second)
					}
				}
			}
			v, ee, perr := ParseVersion(body.Version)
			if perr != nil {
				return Server{}, perr
			}
			if body.Enterprise != nil {
				ee = *body.Enterprise
			}
			return Server{Version: v, Raw: body.Version, Enterprise: ee, Source: src, ClockOffset: offset}, nil
		case code == http.StatusNotFound || code == http.StatusForbidden:
			// 404: a GitLab older than 15.2 (no /metadata), or a proxy hiding it; 403: the
			// token's scopes (create_runner alone, say) do not cover it. Try the next one.
			continue
		default:
			return Server{}, wrap(ctx, o, err)
		}
	}
	return Server{Source: SourceProbe}, nil
}

// TokenInfo is what GET /personal_access_tokens/self says about the access token itself.
type TokenInfo struct {
	Name      string
	Scopes    []string
	ExpiresAt *time.Time // nil: never expires
	UserID    int64
}

// TokenSelf calls GET /personal_access_tokens/self (any scope may read its own token). It
// answers for personal, group and project access tokens; other credentials (OAuth) give an
// error.
func (c *Client) TokenSelf(ctx context.Context) (TokenInfo, error) {
	req, err := c.gl.NewRequest(http.MethodGet, "personal_access_tokens/self", nil, c.idem(ctx))
	if err != nil {
		return TokenInfo{}, err
	}
	var out struct {
		Name      string   `json:"name"`
		Scopes    []string `json:"scopes"`
		ExpiresAt *string  `json:"expires_at"`
		UserID    int64    `json:"user_id"`
	}
	if _, err := c.gl.Do(req, &out); err != nil {
		return TokenInfo{}, wrap(ctx, op{action: "read the access token's scopes (GET /personal_access_tokens/self)", object: "the access token"}, err)
	}
	ti := TokenInfo{Name: out.Name, Scopes: out.Scopes, UserID: out.UserID}
	if out.ExpiresAt != nil {
		if t, err := time.Parse("2006-01-02", *out.ExpiresAt); err == nil {
			ti.ExpiresAt = &t
		}
	}
	return ti, nil
}

// User is the access token's user.
type User struct {
	ID       int64
	Username string
	Admin    bool
	Bot      bool
}

// CurrentUser calls GET /user.
func (c *Client) CurrentUser(ctx context.Context) (User, error) {
	req, err := c.gl.NewRequest(http.MethodGet, "user", nil, c.idem(ctx))
	if err != nil {
		return User{}, err
	}
	var out struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
		IsAdmin  bool   `json:"is_admin"`
		Bot      bool   `json:"bot"`
	}
	if _, err := c.gl.Do(req, &out); err != nil {
		return User{}, wrap(ctx, op{action: "read the access token's user (GET /user)", object: "the user"}, err)
	}
	return User{ID: out.ID, Username: out.Username, Admin: out.IsAdmin, Bot: out.Bot}, nil
}

// Role calls GET /projects/:id/members/all/:user_id (or the group's) and returns the user's
// effective access level (inherited included): 10 Guest … 40 Maintainer, 50 Owner; 0 when the
// user is no member.
func (c *Client) Role(ctx context.Context, owner spec.OwnerKind, ownerID, userID int64) (int, error) {
	path := fmt.Sprintf("projects/%d/members/all/%d", ownerID, userID)
	if owner == spec.OwnerGroup {
		path = fmt.Sprintf("groups/%d/members/all/%d", ownerID, userID)
	}
	req, err := c.gl.NewRequest(http.MethodGet, path, nil, c.idem(ctx))
	if err != nil {
		return 0, err
	}
	var out struct {
		AccessLevel int `json:"access_level"`
	}
	_, err = c.gl.Do(req, &out)
	if errors.Is(err, gl.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap(ctx, op{action: fmt.Sprintf("read the token user's role on %s %d", owner, ownerID), object: fmt.Sprintf("%s %d", owner, ownerID)}, err)
	}
	return out.AccessLevel, nil
}
