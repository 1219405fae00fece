package fleet_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"gotest.tools/v3/assert"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fleet"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// lockedBuffer collects log lines written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	fake   *gitlabfake.Server
	seed   gitlabfake.Seed
	client *gitlab.Client
	log    *lockedBuffer
	ctx    context.Context
}

// fixedNow keeps plans and summaries byte-for-byte stable (no timing in golden files).
var fixedNow = func() time.Time { return time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC) }

func setup(t *testing.T) *env {
	t.Helper()
	fake, seed := gitlabfake.NewTest(t)
	return &env{fake: fake, seed: seed, client: client(t, seed.URL, seed.OwnerToken, true), log: &lockedBuffer{}, ctx: t.Context()}
}

func client(t *testing.T, url, tok string, noRetries bool) *gitlab.Client {
	t.Helper()
	c, err := gitlab.New(gitlab.Config{BaseURL: url, Token: tok, NoRetries: noRetries, RequestTimeout: 10 * time.Second, RetryMax: 3})
	assert.NilError(t, err)
	return c
}

func (e *env) fleet(conc int) *fleet.Fleet {
	l := logrus.New()
	l.SetOutput(e.log)
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableColors: true})
	return &fleet.Fleet{API: e.client, Log: l, Concurrency: conc, Now: fixedNow}
}

func parse(t *testing.T, yaml string) *fleet.Manifest {
	t.Helper()
	m, err := fleet.Parse("fleet.yaml", []byte(strings.TrimLeft(yaml, "\n")))
	assert.NilError(t, err)
	return m
}

// apply plans and applies the whole manifest.
func (e *env) apply(t *testing.T, f *fleet.Fleet, m *fleet.Manifest, prune bool) (*fleet.Plan, fleet.Summary) {
	t.Helper()
	p, err := f.Plan(e.ctx, m, fleet.All, prune)
	assert.NilError(t, err)
	f.Apply(e.ctx, p)
	return p, f.Summarize(p, false)
}

func (e *env) planText(t *testing.T, m *fleet.Manifest, prune bool) (*fleet.Plan, string) {
	t.Helper()
	f := e.fleet(4)
	p, err := f.Plan(e.ctx, m, fleet.All, prune)
	assert.NilError(t, err)
	var b bytes.Buffer
	p.WritePlan(&b)
	p.WriteSummary(&b, f.Summarize(p, true))
	return p, b.String()
}

// markedRunner creates a runner directly, as an interrupted run or another tool would leave it.
func (e *env) markedRunner(t *testing.T, a gitlab.RunnerAttrs, target string) int64 {
	t.Helper()
	if target != "" {
		a.MaintenanceNote = record.ComposeNote(a.MaintenanceNote, record.Runner{Target: target, CreatedAt: fixedNow()})
	}
	if a.AccessLevel == "" {
		a.AccessLevel = spec.NotProtected
	}
	a.RunUntagged = true
	nt, err := e.client.CreateRunner(e.ctx, a)
	assert.NilError(t, err)
	return nt.RunnerID
}

// assertStored checks the invariant for every managed variable: it holds the token of the
// runner it records, and that runner is marked for it.
func (e *env) assertStored(t *testing.T) int {
	t.Helper()
	n := 0
	for _, v := range e.fake.Variables() {
		rec, ok := record.ParseVariable(v.Description)
		if !ok {
			continue
		}
		n++
		r, ok := e.fake.Runner(rec.RunnerID)
		assert.Assert(t, ok, "variable %s records runner %d, which does not exist", v.Key, rec.RunnerID)
		assert.Assert(t, v.Value == r.Token, "variable %s does not hold runner %d's token", v.Key, r.ID)
		_, m, ok := record.ParseNote(r.MaintenanceNote)
		ref := gitlab.VarRef{Owner: spec.OwnerKind(v.Owner), OwnerID: v.OwnerID, Key: v.Key, Scope: v.EnvironmentScope}
		assert.Assert(t, ok && m.Target == ref.Target(), "runner %d is not marked for %s: %q", r.ID, ref, r.MaintenanceNote)
	}
	return n
}

func runnerIDs(s *gitlabfake.Server) []int64 {
	var out []int64
	for _, r := range s.Runners() {
		out = append(out, r.ID)
	}
	return out
}

// writes counts the write requests (non-GET) the fake answered.
func writes(reqs []gitlabfake.Request) int {
	n := 0
	for _, r := range reqs {
		if r.Method != "GET" {
			n++
		}
	}
	return n
}

var _ lifecycle.API = (*gitlab.Client)(nil)
