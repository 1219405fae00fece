package lifecycle

import (
	"context"
	"sync"

	"golang.org/x/sync/errgroup"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
)

// State is what GitLab holds for one Resolved, as Observe read it: everything Decide needs,
// each thing read once.
type State struct {
	// Variable is the variable; nil when GitLab answered 404.
	Variable *gitlab.Variable
	// Record is the variable's record; RecordOK is false when the description holds none.
	Record   record.Variable
	RecordOK bool
	// Runner is the runner the record names, accepted by the trust check (recordedRunner);
	// RunnerErr says why there is none: GitLab's 404, a refused marker (ErrNotCreatedFor) or
	// a failed read. Both are zero when there is no managed variable.
	Runner    *gitlab.Runner
	RunnerErr error
	// Marked are the runners of the spec's owner whose marker names the variable, other than
	// the recorded one: orphans of interrupted or concurrent runs. MarkedErr is the error of
	// listing them.
	Marked    []int64
	MarkedErr error
}

// Observe reads the variable and the owner's runner list at once, then the recorded runner
// and the marker of each candidate orphan at once: two round trips, and nothing is read twice.
// Its error is a failed read of the variable (not a 404); what the other reads found, errors
// included, is in State for Decide to judge.
func (s *Service) Observe(ctx context.Context, r Resolved) (State, error) {
	return s.ObserveFrom(ctx, r, s.API)
}

// ObserveFrom is Observe with the reads answered by rd (fleet answers them from its bulk
// lists). The recorded runner goes through the same trust check.
func (s *Service) ObserveFrom(ctx context.Context, r Resolved, rd Reads) (State, error) {
	var st State
	var list []gitlab.RunnerSummary
	var verr error
	var wg sync.WaitGroup
	wg.Go(func() {
		v, err := rd.GetVariable(ctx, r.Var)
		switch {
		case err == nil:
			st.Variable = v
			st.Record, st.RecordOK = record.ParseVariable(v.Description)
		case !gitlab.IsNotFound(err):
			verr = err
		}
	})
	wg.Go(func() {
		owner, id := runnerOwner(r.Attrs)
		list, st.MarkedErr = rd.ListOwnerRunners(ctx, owner, id, r.Attrs.Type)
	})
	wg.Wait()
	if verr != nil {
		return st, verr
	}
	var recorded int64
	if st.RecordOK {
		recorded = st.Record.RunnerID
		wg.Go(func() { st.Runner, st.RunnerErr = recordedRunnerFrom(ctx, rd, r, st.Record) })
	}
	if st.MarkedErr == nil {
		wg.Go(func() {
			st.Marked, st.MarkedErr = markedIn(ctx, rd, r, list, func(id int64) bool { return id != recorded })
		})
	}
	wg.Wait()
	return st, nil
}

// marked lists the runners, among those pick accepts, whose maintenance note names r's
// variable. Only runners of the spec's type and owner are candidates.
func (s *Service) marked(ctx context.Context, r Resolved, pick func(int64) bool) ([]int64, error) {
	owner, id := runnerOwner(r.Attrs)
	list, err := s.API.ListOwnerRunners(ctx, owner, id, r.Attrs.Type)
	if err != nil {
		return nil, err
	}
	return markedIn(ctx, s.API, r, list, pick)
}

// markedIn reads the details of each candidate of list at once to see its marker. Every
// runner this tool creates for r has r's description; others need no GET.
func markedIn(ctx context.Context, rd Reads, r Resolved, list []gitlab.RunnerSummary, pick func(int64) bool) ([]int64, error) {
	target := r.Var.Target()
	var cands []int64
	for _, sum := range list {
		if (r.AnyDescription || sum.Description == r.Attrs.Description) && pick(sum.ID) {
			cands = append(cands, sum.ID)
		}
	}
	match := make([]bool, len(cands))
	errs := make([]error, len(cands))
	var g errgroup.Group
	g.SetLimit(detailReads)
	for i, id := range cands {
		g.Go(func() error {
			d, err := rd.GetRunner(ctx, id)
			if gitlab.IsNotFound(err) {
				return nil
			}
			if err != nil {
				errs[i] = err
				return nil
			}
			_, m, ok := record.ParseNote(d.MaintenanceNote)
			match[i] = ok && m.Target == target
			return nil
		})
	}
	_ = g.Wait() // every error is in errs, reported in list order

	var out []int64
	for i, id := range cands {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if match[i] {
			out = append(out, id)
		}
	}
	return out, nil
}

// detailReads bounds the runner details read at once (delete looks at every runner of the owner).
const detailReads = 8
