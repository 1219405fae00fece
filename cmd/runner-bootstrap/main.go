// Command runner-bootstrap creates GitLab runners, stores their authentication tokens as
// masked, hidden CI/CD variables and keeps them rotated. All logic lives in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// Before any token is read: a core dump must not hold them.
	if err := cli.Harden(); err != nil {
		os.Stderr.WriteString("runner-bootstrap: cannot mark the process non-dumpable: " + err.Error() + "\n")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.Config{
		Args: os.Args[1:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Version: version,
	})
	stop()
	os.Exit(code)
}
