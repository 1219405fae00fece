// Command bench measures `runner-bootstrap apply` against the fake GitLab served over real
// loopback HTTP with a per-request latency, next to the baseline most teams start from: the
// shell loop of GitLab's "Automate runner creation" tutorial, one curl to create each runner
// and a second to store its token, one runner after another.
//
// For each scenario it measures, in one run: (a) a first apply of N project runners,
// (b) a re-apply with no change, (c) the curl loop against a fresh fake configured the same
// way. Request counts, writes and 429s are the fake's own; the apply's peak memory is the
// built binary's maximum RSS, read from rusage.
//
//	go run ./test/bench            # both scenarios (make bench)
//	go run ./test/bench -quick     # only N=200 at 25 ms (for CI)
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// scenario is one row of the table.
type scenario struct {
	Name      string
	N         int
	Latency   time.Duration
	RateLimit int // requests per minute per user; 0: none
	Projects  int // the runners are spread over this many projects
	// SideBySide runs the baseline at the same time as the apply (each against its own
	// fake), so that a scenario whose every phase is paced by the rate limit takes minutes,
	// not the sum of them.
	SideBySide bool
}

// run is one measured process.
type run struct {
	Wall     time.Duration
	Requests int
	Writes   int
	Count429 int
	MaxRSSKB int64
	Created  int // runners whose token ended up stored
	Failed   int
	Err      error
}

const concurrency = 8

func main() {
	quick := flag.Bool("quick", false, "run only the N=200 scenario (skips the rate-limited N=1000 one, which takes about two and a half minutes)")
	flag.Parse()
	if err := bench(*quick); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func bench(quick bool) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "rb-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "runner-bootstrap")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/runner-bootstrap")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if err := build.Run(); err != nil {
		return fmt.Errorf("build runner-bootstrap: %w", err)
	}
	_, bashErr := exec.LookPath("bash")
	_, curlErr := exec.LookPath("curl")
	haveShell := bashErr == nil && curlErr == nil

	fmt.Printf("host: %d CPUs, load average %s at start (other work on the host slows the curl loop, which forks, more than apply)\n\n", runtime.NumCPU(), loadAverage())
	scenarios := []scenario{
		{Name: "200 runners, 25 ms", N: 200, Latency: 25 * time.Millisecond, Projects: 1},
		{Name: "1000 runners, 25 ms, 2000 req/min", N: 1000, Latency: 25 * time.Millisecond, RateLimit: 2000, Projects: 10, SideBySide: true},
	}
	if quick {
		scenarios = scenarios[:1]
	}
	type result struct {
		sc                       scenario
		apply, reapply, baseline run
	}
	var results []result
	for _, sc := range scenarios {
		fmt.Fprintf(os.Stderr, "bench: %s: apply, re-apply and the curl loop…\n", sc.Name)
		r := result{sc: sc}
		baseline := make(chan run, 1)
		startBaseline := func() {
			if !haveShell {
				baseline <- run{Err: errors.New("bash or curl not found")}
				return
			}
			baseline <- curlLoop(tmp, sc)
		}
		if sc.SideBySide {
			go startBaseline()
		}
		r.apply, r.reapply = applyTwice(tmp, bin, sc)
		if !sc.SideBySide {
			startBaseline()
		}
		r.baseline = <-baseline
		results = append(results, r)
	}

	// The table.
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tN\tlatency\tlimit/min\tapply wall\trequests\treq/runner\t429s\tmax RSS\tbaseline wall\tbaseline req\tbaseline 429s\tspeedup\tideal seq.\tvs ideal\tbound\tapply/bound\t")
	for _, r := range results {
		sc, a, b := r.sc, r.apply, r.baseline
		bound, ideal := latencyBound(sc), idealSequential(sc)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%.2f\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f×\t%s\t%.2f\t\n",
			sc.Name, sc.N, sc.Latency, limitCell(sc.RateLimit), secs(a.Wall), a.Requests, perRunner(a.Requests, sc.N), a.Count429,
			mb(a.MaxRSSKB), wallCell(b), reqCell(b), c429Cell(b), speedup(a, b), secs(ideal), ideal.Seconds()/a.Wall.Seconds(),
			secs(bound), a.Wall.Seconds()/bound.Seconds())
	}
	_ = tw.Flush()
	fmt.Fprintln(os.Stdout, "\n(ideal seq.: a sequential client with no cost of its own, 2 requests per runner, each one latency, within the rate limit;\n at --concurrency 8 apply can be at most 8× faster than it. The curl loop also pays for starting curl, sed and subshells.)")
	fmt.Println()
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "re-apply (no change)\tN\twall\trequests\treq/runner\twrites\t429s\tmax RSS\t")
	for _, r := range results {
		a := r.reapply
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%.2f\t%d\t%d\t%s\t\n", r.sc.Name, r.sc.N, secs(a.Wall), a.Requests, perRunner(a.Requests, r.sc.N), a.Writes, a.Count429, mb(a.MaxRSSKB))
	}
	_ = tw.Flush()

	// What the curl loop spends besides the server's latency: starting bash's subshells, curl
	// and sed for every request. It depends on the host (and its load) more than anything.
	for _, r := range results {
		b := r.baseline
		if b.Wall == 0 || b.Requests == 0 {
			continue
		}
		extra := (b.Wall - time.Duration(b.Requests)*r.sc.Latency) / time.Duration(b.Requests)
		fmt.Printf("\n%s: the curl loop took %.1f ms per request, %.1f ms of it beyond the %s latency (process start-up of curl, sed and subshells on this host).",
			r.sc.Name, float64(b.Wall.Microseconds())/1000/float64(b.Requests), float64(extra.Microseconds())/1000, r.sc.Latency)
	}
	fmt.Println()

	// Rate-limited scenarios: what the limit alone allows.
	for _, r := range results {
		sc := r.sc
		if sc.RateLimit == 0 {
			continue
		}
		atLimit := time.Duration(float64(r.apply.Requests) / float64(sc.RateLimit) * float64(time.Minute))
		paced := time.Duration(float64(atLimit) / 0.66)
		fmt.Printf("\n%s: the limit, not latency, sets the pace: %d requests at %d/min take at least %s;\n"+
			"client-go paces itself at 66%% of RateLimit-Limit (limit/60*0.66 per second, a third of a second's worth as burst), i.e. %s.\n"+
			"apply took %s = %.2f× the limit's own bound and %.2f× client-go's pace. The curl loop ignores the limit: at this latency it stays just under it.\n",
			sc.Name, r.apply.Requests, sc.RateLimit, secs(atLimit), secs(paced), secs(r.apply.Wall), r.apply.Wall.Seconds()/atLimit.Seconds(), r.apply.Wall.Seconds()/paced.Seconds())
	}

	fmt.Printf("\nhost load average at the end: %s\n", loadAverage())

	// The targets.
	fmt.Println("\ntargets:")
	failed := false
	check := func(ok bool, format string, args ...any) {
		mark := "ok  "
		if !ok {
			mark = "MISS"
		}
		fmt.Printf("  %s %s\n", mark, fmt.Sprintf(format, args...))
	}
	for _, r := range results {
		sc, a, re, b := r.sc, r.apply, r.reapply, r.baseline
		if a.Err != nil || re.Err != nil {
			failed = true
		}
		check(a.Err == nil && a.Created == sc.N, "%s: apply stored %d of %d tokens%s", sc.Name, a.Created, sc.N, errSuffix(a.Err))
		check(perRunner(a.Requests, sc.N) <= 3, "%s: ≤3 requests per runner on first apply: %.3f", sc.Name, perRunner(a.Requests, sc.N))
		check(re.Err == nil && re.Writes == 0, "%s: re-apply makes zero writes: %d%s", sc.Name, re.Writes, errSuffix(re.Err))
		if sc.RateLimit > 0 {
			check(a.Count429+re.Count429 == 0, "%s: zero 429s under the rate limit: %d (apply) + %d (re-apply)", sc.Name, a.Count429, re.Count429)
			check(a.MaxRSSKB < 50*1024, "%s: max RSS under 50 MB: %s", sc.Name, mb(a.MaxRSSKB))
		}
		if b.Err == nil && b.Wall > 0 {
			check(b.Wall.Seconds()/a.Wall.Seconds() >= 10, "%s: ≥10× faster than the curl loop: %s", sc.Name, speedup(a, b))
		}
		check(a.Wall.Seconds()/latencyBound(sc).Seconds() <= 1.5, "%s: within 1.5× of the bound ceil(N/%d)·2·latency = %s: %.2f×", sc.Name, concurrency, secs(latencyBound(sc)), a.Wall.Seconds()/latencyBound(sc).Seconds())
		if sc.RateLimit > 0 {
			atLimit := time.Duration(float64(a.Requests) / float64(sc.RateLimit) * float64(time.Minute))
			check(a.Wall.Seconds()/atLimit.Seconds() <= 1.5, "%s: within 1.5× of the rate limit's own bound (requests ÷ limit) = %s: %.2f×", sc.Name, secs(atLimit), a.Wall.Seconds()/atLimit.Seconds())
		}
	}
	if failed {
		return errors.New("an apply failed (see above)")
	}
	return nil
}

// world starts a seeded fake with the scenario's latency, limit and projects.
func world(sc scenario) (*gitlabfake.Server, gitlabfake.Seed, []int64) {
	fake := gitlabfake.New()
	seed := fake.Seed()
	projects := []int64{seed.DeployProjectID}
	if sc.Projects > 1 {
		projects = nil
		// The seed's owner is Owner of group platform, so of every project under it.
		for i := 1; i <= sc.Projects; i++ {
			projects = append(projects, fake.AddProject(fmt.Sprintf("platform/bench-%02d", i)))
		}
	}
	fake.Start()
	seed = fake.Seed()
	fake.SetLatency(sc.Latency)
	fake.SetRateLimit(sc.RateLimit)
	return fake, seed, projects
}

// entry i of a scenario: its project, variable key and description.
func entry(i int, projects []int64) (int64, string, string) {
	return projects[i%len(projects)], fmt.Sprintf("BENCH_RUNNER_TOKEN_%04d", i), fmt.Sprintf("bench-%04d", i)
}

func applyTwice(tmp, bin string, sc scenario) (first, second run) {
	fake, seed, projects := world(sc)
	defer fake.Close()
	var b strings.Builder
	b.WriteString("runners:\n")
	for i := 0; i < sc.N; i++ {
		p, key, desc := entry(i, projects)
		fmt.Fprintf(&b, "  - project_id: %d\n    description: %s\n    tag_list: [bench]\n    variable: {key: %s}\n", p, desc, key)
	}
	manifest := filepath.Join(tmp, fmt.Sprintf("fleet-%d.yaml", sc.N))
	if err := os.WriteFile(manifest, []byte(b.String()), 0o600); err != nil {
		return run{Err: err}, run{Err: err}
	}
	first = applyOnce(fake, seed, bin, manifest, "created", sc.N)
	second = applyOnce(fake, seed, bin, manifest, "unchanged", sc.N)
	first.Created = storedTokens(fake)
	return first, second
}

func applyOnce(fake *gitlabfake.Server, seed gitlabfake.Seed, bin, manifest, want string, n int) run {
	fake.ResetRequests()
	before429 := fake.Count429()
	cmd := exec.Command(bin, "apply", "--file", manifest, "--output", "json", "--concurrency", fmt.Sprint(concurrency), "--timeout", "30m")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "GITLAB_TOKEN=" + seed.OwnerToken, "CI_SERVER_URL=" + seed.URL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := run{Wall: time.Since(start), Requests: len(fake.Requests()), Writes: fake.Writes(), Count429: fake.Count429() - before429}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.MaxRSSKB = ru.Maxrss // KiB on Linux
	}
	var out struct {
		Summary struct {
			Results map[string]int `json:"results"`
			Failed  int            `json:"failed"`
		} `json:"summary"`
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil && err == nil {
		err = jerr
	}
	r.Failed = out.Summary.Failed
	if err == nil && out.Summary.Results[want] != n {
		err = fmt.Errorf("expected %d %s, got %v", n, want, out.Summary.Results)
	}
	if err != nil {
		r.Err = fmt.Errorf("%w\n%s", err, lastLines(stderr.String(), 15))
	}
	return r
}

// baselineScript is the tutorial's loop. The token is read from the first answer into a shell
// variable and handed to the second curl on stdin, so it is never printed nor in any argv.
const baselineScript = `set -u
while read -r project key description; do
  token=$(curl --silent --request POST "$GITLAB_API_URL/user/runners" \
    --header "PRIVATE-TOKEN: $GITLAB_TOKEN" \
    --data runner_type=project_type --data "project_id=$project" \
    --data "description=$description" --data tag_list=bench \
    | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  printf '%s' "$token" | curl --silent --output /dev/null --request POST "$GITLAB_API_URL/projects/$project/variables" \
    --header "PRIVATE-TOKEN: $GITLAB_TOKEN" \
    --data "key=$key" --data-urlencode "value@-" --data masked=true --data protected=true
done < "$1"
`

func curlLoop(tmp string, sc scenario) run {
	fake, seed, projects := world(sc)
	defer fake.Close()
	var b strings.Builder
	for i := 0; i < sc.N; i++ {
		p, key, desc := entry(i, projects)
		fmt.Fprintf(&b, "%d %s %s\n", p, key, desc)
	}
	list := filepath.Join(tmp, fmt.Sprintf("runners-%d.txt", sc.N))
	script := filepath.Join(tmp, "tutorial-loop.sh")
	if err := os.WriteFile(list, []byte(b.String()), 0o600); err != nil {
		return run{Err: err}
	}
	if err := os.WriteFile(script, []byte(baselineScript), 0o700); err != nil {
		return run{Err: err}
	}
	cmd := exec.Command("bash", script, list)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GITLAB_TOKEN=" + seed.OwnerToken, "GITLAB_API_URL=" + seed.URL + "/api/v4"}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	err := cmd.Run()
	r := run{Wall: time.Since(start), Requests: len(fake.Requests()), Writes: fake.Writes(), Count429: fake.Count429()}
	if err != nil {
		r.Err = fmt.Errorf("%w\n%s", err, lastLines(stderr.String(), 15))
	}
	r.Created = len(fake.Variables())
	return r
}

// storedTokens counts variables holding the token of a live runner.
func storedTokens(fake *gitlabfake.Server) int {
	tokens := map[string]bool{}
	for _, r := range fake.Runners() {
		tokens[r.Token] = true
	}
	n := 0
	for _, v := range fake.Variables() {
		if tokens[v.Value] {
			n++
		}
	}
	return n
}

// latencyBound is 2 writes per runner, 8 in flight, each one latency long.
func latencyBound(sc scenario) time.Duration {
	return time.Duration(math.Ceil(float64(sc.N)/concurrency)) * 2 * sc.Latency
}

// idealSequential is the curl loop without the cost of starting processes: 2 requests per
// runner one after another, each taking the latency, and no faster than the rate limit.
func idealSequential(sc scenario) time.Duration {
	d := time.Duration(2*sc.N) * sc.Latency
	if sc.RateLimit > 0 {
		d = max(d, time.Duration(float64(2*sc.N)/float64(sc.RateLimit)*float64(time.Minute)))
	}
	return d
}

func perRunner(req, n int) float64 { return float64(req) / float64(n) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func mb(kb int64) string {
	if kb == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB", float64(kb)/1024)
}

func limitCell(l int) string {
	if l == 0 {
		return "-"
	}
	return fmt.Sprint(l)
}

func wallCell(b run) string {
	if b.Err != nil && b.Wall == 0 {
		return "n/a"
	}
	return secs(b.Wall)
}

func reqCell(b run) string {
	if b.Wall == 0 {
		return "n/a"
	}
	return fmt.Sprint(b.Requests)
}

func c429Cell(b run) string {
	if b.Wall == 0 {
		return "n/a"
	}
	return fmt.Sprint(b.Count429)
}

func speedup(a, b run) string {
	if b.Wall == 0 || a.Wall == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f×", b.Wall.Seconds()/a.Wall.Seconds())
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + strings.SplitN(err.Error(), "\n", 2)[0] + ")"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the module (no go.mod found)")
		}
		dir = parent
	}
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
