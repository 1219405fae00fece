// Package testbin builds the runner-bootstrap binary once for a test package's TestMain, so
// end-to-end suites run the real program the way users do.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Main builds the binary with the given version into a temporary directory, sets *path to
// it, runs the tests, calls after, and exits with their code. Call it from TestMain.
func Main(m interface{ Run() int }, version string, path *string, after ...func()) {
	dir, err := os.MkdirTemp("", "runner-bootstrap-"+version)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*path = filepath.Join(dir, "runner-bootstrap")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", *path, filepath.Join(moduleRoot(), "cmd", "runner-bootstrap"))
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build runner-bootstrap:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	for _, f := range after {
		f()
	}
	os.Exit(code)
}

// moduleRoot is the repository root, found from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
