package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/faults"
)

// TestConcurrentCreatesConverge: two or three processes ensuring the same spec at the same
// moment (every API call taking ~20ms, so their steps interleave) all succeed and leave exactly
// one runner, whose current token the variable holds. Each round starts from nothing, and
// rounds are repeated because the interleaving differs every time.
func TestConcurrentCreatesConverge(t *testing.T) {
	const rounds = 10
	for _, procs := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d processes", procs), func(t *testing.T) {
			t.Parallel()
			raced := 0
			for round := 1; round <= rounds; round++ {
				tg := newTarget(t)
				tg.needFake(t)
				tg.fake.SetLatency(20 * time.Millisecond)
				results := tg.runTogether(t, procs, "create", "-o", "json", "--project-id", "42", "--description", "race", "--tag-list", "docker")

				target := faults.Target{Owner: "project", OwnerID: 42, Key: "RUNNER_TOKEN", Scope: "*"}
				st := tg.fake.State()
				problems := faults.Converged(st, target)
				if len(st.Runners) != 1 {
					problems = append(problems, fmt.Sprintf("%d runners exist, want one", len(st.Runners)))
				}
				var outs []string
				for i, r := range results {
					if r.ExitCode != 0 {
						problems = append(problems, fmt.Sprintf("process %d exited %d", i+1, r.ExitCode))
					}
					outs = append(outs, fmt.Sprintf("process %d (exit %d):\n%s%s", i+1, r.ExitCode, r.Stdout(), r.Stderr()))
				}
				assert.Check(t, is.Len(problems, 0), "round %d: %s\n%s", round, strings.Join(problems, "\n"), strings.Join(outs, "\n"))
				if len(st.Runners) == 1 && st.Runners[0].ID > 1000 {
					raced++ // more than one runner was created: the processes really overlapped
				}

				// Every process reports the runner that was kept, or its own that a newer
				// one superseded (the loser looks again and finds the winner's).
				for _, r := range results {
					if r.ExitCode == 0 && len(st.Runners) == 1 {
						got := decode(t, r)
						assert.Check(t, got.Action == "created" || got.Action == "unchanged", "action %q", got.Action)
					}
				}
				// A later run sees a settled state and writes nothing.
				writes := tg.writes()
				again := tg.run(t, tg.seed.MaintainerToken, nil, "create", "-o", "json", "--project-id", "42", "--description", "race", "--tag-list", "docker")
				again.Assert(t, icmd.Success)
				assert.Check(t, is.Equal(decode(t, again).Action, "unchanged"))
				assert.Check(t, is.Equal(tg.writes(), writes))
				if t.Failed() {
					return
				}
			}
			t.Logf("%d of %d rounds created more than one runner and converged to one", raced, rounds)
			assert.Check(t, raced > 0, "no round overlapped: the test did not exercise a race")
		})
	}
}

// runTogether starts n copies of the binary at once with the same arguments and waits for all.
// Their output is checked for secrets like every other run's.
func (tg *target) runTogether(t *testing.T, n int, args ...string) []*icmd.Result {
	t.Helper()
	envv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CI_SERVER_URL=" + tg.url, "GITLAB_TOKEN=" + tg.seed.MaintainerToken}
	cmds := make([]*icmd.Result, n)
	for i := range cmds {
		cmds[i] = icmd.StartCmd(icmd.Command(binary, args...), icmd.WithEnv(envv...))
		assert.NilError(t, cmds[i].Error)
	}
	for i, c := range cmds {
		cmds[i] = icmd.WaitOnCmd(time.Minute, c)
		tg.assertNoSecrets(t, cmds[i].Stdout()+cmds[i].Stderr())
	}
	return cmds
}

// TestConcurrentRotationsNeverLeaveARevokedToken: three rotations of one variable at the same
// moment (every API call taking ~20ms) must never end with every run exiting 0 while the
// variable holds a revoked token: each run checks after storing that its token is the
// runner's current one and rotates again when a concurrent reset revoked it and nobody stored
// since. A run that gives up says so (non-zero) and leaves the variable marked, so status
// reports it; after the last run, status agrees with the stored token.
func TestConcurrentRotationsNeverLeaveARevokedToken(t *testing.T) {
	const rounds = 8
	target := faults.Target{Owner: "project", OwnerID: 42, Key: "RUNNER_TOKEN", Scope: "*"}
	raced := 0
	for round := 1; round <= rounds; round++ {
		tg := newTarget(t)
		tg.needFake(t)
		tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", "42").Assert(t, icmd.Success)
		tg.fake.SetLatency(20 * time.Millisecond)
		results := tg.runTogether(t, 3, "rotate", "-o", "json", "--project-id", "42")
		tg.fake.SetLatency(0)

		st := tg.fake.State()
		stale := len(faults.Converged(st, target)) > 0
		allOK := true
		var outs []string
		for i, r := range results {
			allOK = allOK && r.ExitCode == 0
			outs = append(outs, fmt.Sprintf("process %d (exit %d):\n%s%s", i+1, r.ExitCode, r.Stdout(), r.Stderr()))
			if strings.Contains(r.Stderr(), "rotating again") || strings.Contains(r.Stdout(), "a concurrent rotation stored a newer token") {
				raced++
			}
		}
		assert.Check(t, !(stale && allOK), "round %d: every rotation exited 0 but the variable holds a revoked token\n%s", round, strings.Join(outs, "\n"))
		status := tg.run(t, tg.seed.MaintainerToken, nil, "status", "--project-id", "42")
		if stale {
			assert.Check(t, is.Equal(status.ExitCode, 10), "round %d: the stored token is revoked but status says:\n%s", round, status.Stdout())
		} else {
			assert.Check(t, is.Equal(status.ExitCode, 0), "round %d: %s", round, status.Combined())
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d runs of %d rounds saw a concurrent rotation and handled it", raced, rounds)
	assert.Check(t, raced > 0, "no round overlapped: the test did not exercise a race")
}
