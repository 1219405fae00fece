package lifecycle

import (
	"context"
	"errors"
	"slices"
	"time"
)

// errSuperseded means a concurrent run created a newer runner for the same variable; the
// losing run deletes its own runner and looks again.
var errSuperseded = errors.New("superseded by a concurrent run")

const ensureAttempts = 3

// Ensure makes the runner and its variable match r: Observe, Decide, Execute. Order of
// operations, and why each step is safe to interrupt:
//
//  1. read the variable and the owner's runners, then the runner the variable records and
//     the marker of each candidate orphan (reads only, Observe);
//  2. runner present: update it in place (PUT) if the spec changed; the token is untouched;
//  3. otherwise delete orphans: runners whose maintenance note names this variable but that the
//     variable does not name (a run was killed between creating a runner and storing its token);
//  4. create the runner with that marker already in its maintenance note, so if the run dies
//     now the next run finds it in step 3; if a newer marked runner exists by then, a
//     concurrent run wins: delete this one and look again;
//  5. store the token (the only copy, from the API response) with the runner id in the
//     variable's description; if storing fails, delete the runner just created;
//  6. read the variable back and list the older marked runners at once, and delete those, so
//     two concurrent runs end with one runner (the newest wins; the loser deletes its own).
func (s *Service) Ensure(ctx context.Context, r Resolved) (Result, error) {
	if err := s.withServer(ctx, &r); err != nil {
		return newResult(r, ""), err
	}
	for attempt := 1; ; attempt++ {
		res, err := s.ensureOnce(ctx, r)
		if !errors.Is(err, errSuperseded) || attempt == ensureAttempts {
			return res, err
		}
		s.Log.WithField("attempt", attempt).Info("a concurrent run created a newer runner for this variable; looking again")
		s.Pause(time.Duration(attempt) * 500 * time.Millisecond)
	}
}

func (s *Service) ensureOnce(ctx context.Context, r Resolved) (Result, error) {
	// What this GitLab cannot do safely is refused before anything is read or written.
	notes, err := adapt(r.Server, r, true)
	if err != nil {
		return newResult(r, ""), err
	}
	st, err := s.Observe(ctx, r)
	if err != nil {
		return newResult(r, ""), err
	}
	if st.Variable != nil && st.RecordOK {
		if err := s.checkGroupFilter(ctx, r); err != nil {
			return newResult(r, ""), err
		}
	}
	p := Decide(r, st)
	for _, n := range p.Result.Notes {
		if !slices.Contains(notes, n) {
			notes = append(notes, n)
		}
	}
	p.Result.Notes = notes
	return s.Execute(ctx, r, p)
}
