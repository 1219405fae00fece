package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/testbin"
)

var binary string

func TestMain(m *testing.M) { testbin.Main(m, "faults", &binary, func() { os.Remove(fleetFile) }) }

// world is one fake GitLab and everything the binary printed against it.
type world struct {
	t    *testing.T
	fake *gitlabfake.Server
	seed gitlabfake.Seed
	home string

	mu      sync.Mutex
	secrets []string
	outputs []string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	fake, seed := gitlabfake.NewTest(t)
	w := &world{t: t, fake: fake, seed: seed, home: t.TempDir()}
	w.secrets = append(w.secrets, seed.AdminToken, seed.OwnerToken, seed.MaintainerToken, seed.DeveloperToken,
		seed.ReadAPIToken, seed.CreateRunnerOnlyToken, seed.ExpiredToken, seed.RevokedToken)
	return w
}

// snapshot remembers every token the fake holds now, so later output can be checked for it
// even after the runner is gone.
func (w *world) snapshot() gitlabfake.State {
	st := w.fake.State()
	w.mu.Lock()
	w.secrets = append(w.secrets, Secrets(st)...)
	w.mu.Unlock()
	return st
}

// outcome is one run of the binary.
type outcome struct {
	args   []string
	code   int
	stdout string
	stderr string
	killed bool
}

func (o outcome) String() string {
	return fmt.Sprintf("runner-bootstrap %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(o.args, " "), o.code, o.stdout, o.stderr)
}

// lastLine is the error sentence a failed run ends with.
func (o outcome) lastLine() string {
	lines := strings.Split(strings.TrimRight(o.stderr, "\n"), "\n")
	return lines[len(lines)-1]
}

// command prepares the binary with a clean environment: the access token comes from
// GITLAB_TOKEN, never from argv.
func (w *world) command(ctx context.Context, args []string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.home, "CI_SERVER_URL=" + w.seed.URL, "GITLAB_TOKEN=" + w.seed.MaintainerToken}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// run runs the binary to its end (at most a minute).
func (w *world) run(args ...string) outcome {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), time.Minute)
	defer cancel()
	cmd, stdout, stderr := w.command(ctx, args)
	err := cmd.Run()
	return w.finish(args, err, stdout, stderr)
}

// runKilled starts the binary, waits until the fake has taken the (single, Times: 1) fault that
// stalls the call, and kills the process with SIGKILL while the call is in flight.
func (w *world) runKilled(args ...string) (outcome, error) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), time.Minute)
	defer cancel()
	cmd, stdout, stderr := w.command(ctx, args)
	if err := cmd.Start(); err != nil {
		return outcome{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			o := w.finish(args, err, stdout, stderr)
			return o, fmt.Errorf("the process ended before the faulted call arrived:\n%s", o)
		case <-tick.C:
		}
		// The fake takes a fault when the request arrives (before its stall), and drops a
		// Times: 1 fault from its list once taken; requests are only logged when they end.
		if len(w.fake.Faults()) == 0 {
			break
		}
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return outcome{}, err
	}
	o := w.finish(args, <-done, stdout, stderr)
	o.killed = true
	return o, nil
}

func (w *world) finish(args []string, err error, stdout, stderr *bytes.Buffer) outcome {
	o := outcome{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		o.code = ee.ExitCode()
	default:
		o.code = -1
		o.stderr += "\n(test harness: " + err.Error() + ")"
	}
	w.mu.Lock()
	w.outputs = append(w.outputs, o.stdout, o.stderr)
	w.mu.Unlock()
	return o
}

// mustRun runs a preparation step that has to succeed.
func (w *world) mustRun(args ...string) outcome {
	w.t.Helper()
	o := w.run(args...)
	if o.code != 0 {
		w.t.Fatalf("preparation failed: %s", o)
	}
	return o
}

// leaks checks everything printed in this world against every token it ever held.
func (w *world) leaks() []string {
	w.snapshot()
	w.mu.Lock()
	defer w.mu.Unlock()
	return Leaks(strings.Join(w.outputs, "\n"), w.secrets)
}
