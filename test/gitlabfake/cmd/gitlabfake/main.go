// Command gitlabfake serves the fake GitLab API of package gitlabfake on a local
// port, for scripts and end-to-end tests that run the real binary.
//
// It prints "listening on http://127.0.0.1:PORT" once it accepts connections and
// serves until SIGINT or SIGTERM. With --env-file it first writes GITLAB_URL and the
// seed's tokens and ids as KEY=value lines that a shell can source.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gitlabfake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	seed := fs.Bool("seed", true, "create the standard seed world")
	envFile := fs.String("env-file", "", "write GITLAB_URL and the seed tokens to this file")
	expiration := fs.Duration("runner-token-expiration", 0, "runner token lifetime (0: never expire)")
	latency := fs.Duration("latency", 0, "latency added to every API request")
	rateLimit := fs.Int("rate-limit", 0, "authenticated API requests per period per user (0: off)")
	ratePeriod := fs.Duration("rate-limit-period", time.Minute, "the throttle's fixed window (GitLab's throttle_authenticated_api_period_in_seconds)")
	rateHeaders := fs.Bool("rate-limit-headers", true, "RateLimit-* headers on unthrottled answers too (GitLab's rate_limiting_headers_for_unthrottled_requests flag); false: only on a 429")
	version := fs.String("gitlab-version", gitlabfake.NewestVersion+"-ee", "GitLab release to emulate: X.Y.Z (CE) or X.Y.Z-ee (EE)")
	tier := fs.String("tier", "", "licence tier of an EE release: free, premium or ultimate (default premium)")
	if err := fs.Parse(args); err != nil {
		return 2
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "gitlabfake: listen: %v\n", err)
		return 1
	}
	url := "http://" + ln.Addr().String()
	s := gitlabfake.New()
	if err := s.SetGitLab(*version, *tier); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		_ = ln.Close()
		return 2
	}
	s.SetBaseURL(url)
	s.SetRunnerTokenExpiration(*expiration)
	s.SetLatency(*latency)
	s.SetThrottle(gitlabfake.Throttle{Requests: *rateLimit, Period: *ratePeriod, HeadersOnEveryAnswer: *rateHeaders})
	env := "GITLAB_URL=" + url + "\nGITLAB_API_URL=" + url + "/api/v4\n"
	if *seed {
		env = s.Seed().Env()
	}
	if *envFile != "" {
		if err := os.WriteFile(*envFile, []byte(env), 0o600); err != nil {
			fmt.Fprintf(stderr, "gitlabfake: write env file: %v\n", err)
			return 1
		}
	}

	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on %s\n", url)

	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintf(stderr, "gitlabfake: serve: %v\n", err)
		return 1
	}
	s.Close() // releases stalled requests
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "gitlabfake: shutdown: %v\n", err)
		return 1
	}
	return 0
}
