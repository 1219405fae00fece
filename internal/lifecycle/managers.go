package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
)

// ActiveWithin is how recently a manager must have contacted GitLab to count as one that uses
// the runner's token: a rotation breaks every such manager until it is redeployed.
const ActiveWithin = 24 * time.Hour

// serverReader is implemented by the GitLab client: the server's version, for the capability
// table (the managers route exists only from 17.1).
type serverReader interface {
	Server(ctx context.Context) (gitlab.Server, error)
}

// managersUnknown says, in words, why the managers of a runner cannot be read on this server;
// "" when they can (or the version is not known, in which case the route is tried).
func (s *Service) managersUnknown(ctx context.Context) string {
	sr, ok := s.API.(serverReader)
	if !ok {
		return ""
	}
	srv, err := sr.Server(ctx)
	if err != nil || !srv.Known() || srv.Has(gitlab.CapRunnerManagers) {
		return ""
	}
	return fmt.Sprintf("the runner's managers are unknown on this version: GitLab %s has no GET /runners/:id/managers (%s and later)", srv.Version, gitlab.Requirement(gitlab.CapRunnerManagers))
}

// listManagers reads a runner's managers; unknown is non-empty (and the list nil) where the
// server cannot list them.
func (s *Service) listManagers(ctx context.Context, id int64) (ms []gitlab.Manager, unknown string, err error) {
	if why := s.managersUnknown(ctx); why != "" {
		return nil, why, nil
	}
	all, err := s.API.ListManagers(ctx, id)
	if err != nil {
		return nil, "", err
	}
	return HostManagers(all), "", nil
}

// HostManagers leaves out the manager of the tool's own token checks (record.VerifySystemID),
// which GitLab lists until the check removes it (or, if removing it failed, until it is stale).
func HostManagers(ms []gitlab.Manager) []gitlab.Manager {
	out := make([]gitlab.Manager, 0, len(ms))
	for _, m := range ms {
		if m.SystemID != record.VerifySystemID {
			out = append(out, m)
		}
	}
	return out
}

// ActiveManagers keeps the managers that contacted GitLab within ActiveWithin before at.
func ActiveManagers(ms []gitlab.Manager, at time.Time) []gitlab.Manager {
	out := []gitlab.Manager{}
	for _, m := range ms {
		if m.ContactedAt != nil && at.Sub(*m.ContactedAt) <= ActiveWithin {
			out = append(out, m)
		}
	}
	return out
}

// DescribeManagers is one line per manager for messages: system id, version, last contact.
func DescribeManagers(ms []gitlab.Manager) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%s (version %s, last contact %s)", m.SystemID, orUnknown(m.Version), contact(m.ContactedAt)))
	}
	return strings.Join(parts, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func contact(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// ManagerWait is what status --wait-managers found: which of the managers that used the token
// before the rotation have contacted GitLab since (they can only have done so with the new
// token, since the old one was revoked at the rotation).
type ManagerWait struct {
	RotatedAt time.Time        `json:"rotated_at"`
	Back      []gitlab.Manager `json:"back"`
	Missing   []gitlab.Manager `json:"missing"`
	// Unknown says why the managers could not be read (an older GitLab).
	Unknown string `json:"unknown,omitempty"`
}

// WaitOptions tune WaitManagers.
type WaitOptions struct {
	// Within bounds the wait.
	Within time.Duration
	// Every is the pause between two reads of the managers list (default 10s).
	Every time.Duration
	// Progress, if set, is called once for each manager as it comes back.
	Progress func(m gitlab.Manager)
}

// WaitManagers polls the managers of the runner a status report names until every manager that
// was active before the token was last stored (the record's token_set_at, the rotation time)
// has contacted GitLab after it, or o.Within has passed. Managers that first appeared after
// the rotation are new hosts deployed with the new token and are not waited for. It only reads.
func (s *Service) WaitManagers(ctx context.Context, rep Report, o WaitOptions) (ManagerWait, error) {
	w := ManagerWait{Back: []gitlab.Manager{}, Missing: []gitlab.Manager{}}
	if rep.TokenSetAt == nil || rep.RunnerID == 0 {
		return w, fmt.Errorf("the variable's record has no rotation time (token_set_at), so there is nothing to wait for")
	}
	// The record keeps whole seconds: a contact in the rotation's own second counts as after.
	w.RotatedAt = rep.TokenSetAt.UTC()
	if why := s.managersUnknown(ctx); why != "" {
		w.Unknown = why
		return w, nil
	}
	every := o.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	deadline := s.Now().Add(o.Within)
	var waiting []string // system ids of managers active before the rotation
	reported := map[string]bool{}
	for first := true; ; first = false {
		all, err := s.API.ListManagers(ctx, rep.RunnerID)
		if err != nil {
			return w, err
		}
		ms := HostManagers(all)
		if first {
			for _, m := range ms {
				if m.CreatedAt != nil && !m.CreatedAt.Before(w.RotatedAt) {
					continue // deployed after the rotation
				}
				if m.ContactedAt != nil && w.RotatedAt.Sub(*m.ContactedAt) <= ActiveWithin {
					waiting = append(waiting, m.SystemID)
				}
			}
		}
		w.Back, w.Missing = w.Back[:0], w.Missing[:0]
		for _, m := range ms {
			if !slices.Contains(waiting, m.SystemID) {
				continue
			}
			if m.ContactedAt != nil && !m.ContactedAt.Before(w.RotatedAt) {
				w.Back = append(w.Back, m)
				if !reported[m.SystemID] && o.Progress != nil {
					o.Progress(m)
				}
				reported[m.SystemID] = true
			} else {
				w.Missing = append(w.Missing, m)
			}
		}
		// A manager deleted meanwhile (unregistered, or pruned) is not coming back either.
		for _, id := range waiting {
			if !slices.ContainsFunc(ms, func(m gitlab.Manager) bool { return m.SystemID == id }) {
				w.Missing = append(w.Missing, gitlab.Manager{SystemID: id, Status: "deleted"})
			}
		}
		left := deadline.Sub(s.Now())
		if len(w.Missing) == 0 || left <= 0 {
			return w, nil
		}
		s.Pause(min(every, left))
		if ctx.Err() != nil {
			return w, ctx.Err()
		}
	}
}
