package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// TestReadsAreBounded: an endless input (/dev/zero as a manifest or values file, an endless
// answer from a server) ends in one sentence naming the documented limit, not in gigabytes.
func TestReadsAreBounded(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tg.run(t, tg.seed.MaintainerToken, nil, "apply", "--file", "/dev/zero").Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "the manifest /dev/zero is larger than 8 MiB"})
	tg.run(t, tg.seed.MaintainerToken, nil, "migrate", "--helm-values", "/dev/zero", "--project-id", "42").Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "--helm-values /dev/zero is larger than 4 MiB"})
	tg.run(t, tg.seed.MaintainerToken, nil, "migrate", "--register-command-file", "/dev/zero", "--project-id", "42").Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "larger than 1 MiB"})
	big := filepath.Join(t.TempDir(), "token")
	assert.NilError(t, os.WriteFile(big, []byte(strings.Repeat("glpat-", 2000)), 0o600))
	tg.run(t, "", nil, "status", "--project-id", "42", "--token-file", big).Assert(t, icmd.Expected{ExitCode: exitUsage, Err: "--token-file " + big + " is larger than 4 KiB"})
	assert.Check(t, is.Equal(tg.writes(), 0))

	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id": 42, "path_with_namespace": "`))
		chunk := []byte(strings.Repeat("a", 64<<10))
		for range 1 << 12 { // up to 256 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)
	res := tg.run(t, tg.seed.MaintainerToken, nil, "status", "--project-id", "42", "--gitlab-url", endless.URL)
	res.Assert(t, icmd.Expected{ExitCode: 1, Err: "is larger than 32 MiB, the most runner-bootstrap reads from GitLab"})
}

// TestABlockedReadEndsOnSIGTERM: a manifest that is a FIFO nobody writes to blocks the read;
// SIGTERM (a cancelled job) ends the run at once with a sentence, instead of hanging.
func TestABlockedReadEndsOnSIGTERM(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fleet.yaml")
	assert.NilError(t, syscall.Mkfifo(fifo, 0o600))
	cmd := exec.Command(binary, "apply", "--file", fifo, "--gitlab-url", "https://gitlab.example.com")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GITLAB_TOKEN=glpat-abcdefghijklmnopqrst"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	assert.NilError(t, cmd.Start())
	time.Sleep(300 * time.Millisecond)
	assert.NilError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the run did not end after SIGTERM while reading a blocked manifest")
	}
	assert.Check(t, is.Contains(stderr.String(), "reading the manifest "+fifo+" was interrupted"))
}
