package lifecycle_test

import (
	"net/http"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
)

func TestPruneManagersDryRunThenReal(t *testing.T) {
	e := setup(t, maintainer)
	c := e.withClock(t)
	r, res := e.created(t)
	tok := e.deployVar(t).Value
	assert.Equal(t, requestJob(t, e.seed.URL, tok, "s_gone00000001"), http.StatusNoContent)
	c.add(8 * 24 * time.Hour)
	assert.Equal(t, requestJob(t, e.seed.URL, tok, "s_live00000001"), http.StatusNoContent)

	dry, err := e.svc.PruneManagers(e.ctx, r, tokenSecret(tok), lifecycle.DefaultManagerAge, true)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(dry, 1))
	assert.Check(t, is.Equal(dry[0].SystemID, "s_gone00000001"))
	assert.Check(t, !dry[0].Deleted)
	assert.Check(t, is.Contains(dry[0].Reason, "beyond --older-than 7d"))
	assert.Check(t, is.Len(managerIDs(t, e, res.RunnerID), 2), "--dry-run removed a manager")

	done, err := e.svc.PruneManagers(e.ctx, r, tokenSecret(tok), lifecycle.DefaultManagerAge, false)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(done, 1))
	assert.Check(t, done[0].Deleted)
	assert.Check(t, is.DeepEqual(managerIDs(t, e, res.RunnerID), []string{"s_live00000001"}), "the live manager, and only it, is left (the verify check's own entry is removed too)")
}

func TestPruneManagersRefusesAStaleToken(t *testing.T) {
	e := setup(t, maintainer)
	r, res := e.created(t)
	tok := e.deployVar(t).Value
	e.fake.RotateRunnerTokenAsRunner(res.RunnerID)
	_, err := e.svc.PruneManagers(e.ctx, r, tokenSecret(tok), lifecycle.DefaultManagerAge, false)
	assert.Check(t, is.Equal(fail.Code(err), fail.CodeConflict))
	assert.Check(t, is.ErrorContains(err, "not valid any more"))
}

func managerIDs(t *testing.T, e *env, id int64) []string {
	t.Helper()
	ms, err := e.svc.API.ListManagers(e.ctx, id)
	assert.NilError(t, err)
	var out []string
	for _, m := range ms {
		out = append(out, m.SystemID)
	}
	return out
}
