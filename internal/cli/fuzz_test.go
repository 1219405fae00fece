package cli_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/cli"
)

// FuzzArgs drives the real parser with any command line (arguments separated by NUL, which no
// argument can hold) and an environment without an access token. Whatever the flags and
// durations, Run never panics, exits 0 only for --help or --version (nothing can be created,
// rotated or deleted without a token), and otherwise exits 2 (bad input) with its sentence on
// stderr and nothing on stdout.
func FuzzArgs(f *testing.F) {
	for _, args := range [][]string{
		{"create", "--project-id", "42"},
		{"create", "--project-id", "platform/deploy", "--tag-list", "docker,linux", "--no-run-untagged", "--maximum-timeout", "3600", "--timeout", "5m", "--request-timeout", "30s"},
		{"create", "--runner-type", "group_type", "--group-id", "10", "--variable-project", "42", "--variable-environment-scope", "production", "-o", "json"},
		{"create", "--runner-type", "instance_type", "--variable-instance", "--max-retries", "21"},
		{"create", "--project-id", "42", "--timeout", "0s"},
		{"create", "--project-id", "42", "--request-timeout", "-1s"},
		{"create", "--project-id", "42", "--timeout", "1.5h", "--request-timeout", "9223372036854775807ns"},
		{"create", "--project-id", "42", "--timeout", "3 days"},
		{"rotate", "--project-id", "42", "--if-expiring-within", "72h"},
		{"rotate", "--project-id", "42", "--if-expiring-within=-1h"},
		{"rotate", "--all", "--group-id", "platform", "--include-subgroups", "--concurrency", "0"},
		{"rotate", "--project-id", "42", "--use-runner-token"},
		{"status", "--project-id", "42", "--warn-within", "168h", "-o", "json"},
		{"status", "--variable-instance", "--warn-within", "1e9h"},
		{"delete", "--project-id", "42", "--runner-type", "instance_type"},
		{"prune", "--project-id", "42", "--older-than", "720h", "--dry-run"},
		{"prune", "--instance", "--older-than", "-5m"},
		{"apply", "-f", "fleet.yaml", "--dry-run", "--concurrency", "33", "--shard", "2/1"},
		{"apply", "--file", "testdata/none.yaml", "--shard", "1/0"},
		{"--log-level", "trace", "--log-format", "json", "create", "--project-id", "42"},
		{"create", "--help"}, {"--version"}, {"-h"}, {}, {""}, {"--"}, {"create", "--", "--help"},
	} {
		f.Add(strings.Join(args, "\x00"))
	}
	f.Fuzz(func(t *testing.T, line string) {
		var args []string
		if line != "" {
			args = strings.Split(line, "\x00")
		}
		for _, a := range args {
			// A token file could hold a real token and reach a real GitLab; "-" makes apply
			// read this process's stdin, and device files may never end.
			if strings.Contains(a, "token-file") || a == "-" || strings.HasSuffix(a, "=-") || a == "-f-" ||
				strings.Contains(a, "/dev/") || strings.Contains(a, "/proc/") || strings.Contains(a, "/sys/") {
				t.Skip("input could leave the sandbox")
			}
		}
		var stdout, stderr bytes.Buffer
		code := cli.Run(t.Context(), cli.Config{
			Args: args, Stdout: &stdout, Stderr: &stderr, Version: "fuzz",
			// No access token anywhere; a closed port in case a URL is ever used.
			Getenv: func(k string) string {
				if k == "CI_SERVER_URL" {
					return "http://127.0.0.1:9"
				}
				return ""
			},
		})
		switch code {
		case 0:
			if !asksForHelp(args) {
				t.Fatalf("exit 0 without an access token for %q\nstdout: %s\nstderr: %s", args, stdout.String(), stderr.String())
			}
		case 2:
			if stdout.Len() != 0 {
				// Only -o json prints on failure: one object with the sentence and the code.
				var obj struct {
					Error    string `json:"error"`
					ExitCode int    `json:"exit_code"`
				}
				if err := json.Unmarshal(stdout.Bytes(), &obj); err != nil || obj.Error == "" || obj.ExitCode != 2 {
					t.Fatalf("bad input printed something other than a JSON error on stdout for %q: %q", args, stdout.String())
				}
			}
			// With --log-format json the sentence is the msg of a JSON entry at level error.
			if !strings.Contains(stderr.String(), "runner-bootstrap: ") && !strings.Contains(stderr.String(), `"level":"error","msg":"`) {
				t.Fatalf("bad input without a message for %q: %q", args, stderr.String())
			}
		default:
			t.Fatalf("exit %d without an access token for %q, want 2 (bad input)\nstdout: %s\nstderr: %s", code, args, stdout.String(), stderr.String())
		}
	})
}

// asksForHelp: --help, -h (also in a cluster of short flags such as -oh) or --version.
func asksForHelp(args []string) bool {
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		switch {
		case name == "--help" || name == "--version":
			return true
		case !strings.HasPrefix(a, "--") && strings.HasPrefix(a, "-") && strings.Contains(a, "h"):
			return true
		}
	}
	return false
}
