// Command bench measures `runner-bootstrap apply` against the fake GitLab, served in this
// process over loopback HTTP with a per-request latency and GitLab's throttle, next to an
// ideal client written here: only the two writes a runner needs (create it, store its token),
// at full concurrency, obeying the RateLimit-* headers with perfect knowledge of the server's
// clock. Each row runs apply (the built binary, for its maximum RSS) and the ideal client at
// the same time, each on its own fake configured the same way, so that both see the same load
// on the host.
//
//	go run ./test/bench            # every row (make bench), about two minutes
//	go run ./test/bench -quick     # only the row without a rate limit
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// scenario is one row of the table.
type scenario struct {
	Name     string
	N        int
	Limit    int // requests per minute per user (GitLab.com: 2,000); 0: no throttle
	Shards   int // apply processes (--shard I/N), one fake
	Projects int // the runners are spread over this many projects
	// Spent and Left set the throttle's window when a run starts: Spent requests already
	// counted for the user (its token's other users) and Left until the window ends. Then
	// both clients must wait for a window's end; see docs/fleet.md.
	Spent int
	Left  time.Duration
}

const (
	latency     = 25 * time.Millisecond
	concurrency = 8
)

// run is one measured client.
type run struct {
	Wall     time.Duration
	Requests int
	Writes   int
	Count429 int
	MaxRSSKB int64
	Stored   int // runners whose token ended up stored
	Err      error
}

func main() {
	quick := flag.Bool("quick", false, "run only the row without a rate limit")
	flag.Parse()
	if err := bench(*quick); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type result struct {
	sc             scenario
	apply, reapply run
	ideal          run
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

	fmt.Printf("host: %d CPUs, load average %s at start (shared with other work: apply and the ideal client run side by side, so both see the same load)\n\n", runtime.NumCPU(), loadAverage())
	scenarios := []scenario{
		{Name: "200 runners, no limit", N: 200, Shards: 1, Projects: 1},
		{Name: "300 runners, 2,000/min", N: 300, Limit: 2000, Shards: 1, Projects: 3},
		{Name: "1,000 runners, 2,000/min", N: 1000, Limit: 2000, Shards: 1, Projects: 10, Spent: 1000, Left: 30 * time.Second},
		{Name: "4 shards of 1,000, 2,000/min", N: 1000, Limit: 2000, Shards: 4, Projects: 10, Spent: 1000, Left: 30 * time.Second},
	}
	if quick {
		scenarios = scenarios[:1]
	}
	var results []result
	var trialNotes []string
	for _, sc := range scenarios {
		fmt.Fprintf(os.Stderr, "bench: %s: apply and the ideal client side by side, then the re-apply…\n", sc.Name)
		// Rows that fit in one window are latency-bound and take seconds: the median of three
		// side-by-side pairs (by apply÷ideal) damps the host's noise. The others take a
		// window or two each and run once.
		trials := 3
		if sc.Spent > 0 {
			trials = 1
		}
		var pairs []result
		for range trials {
			r := result{sc: sc}
			ideal := make(chan run, 1)
			go func() { ideal <- idealRun(sc) }()
			r.apply, r.reapply = applyTwice(tmp, bin, sc)
			r.ideal = <-ideal
			pairs = append(pairs, r)
		}
		sort.Slice(pairs, func(i, j int) bool {
			return ratio(pairs[i].apply.Wall, pairs[i].ideal.Wall) < ratio(pairs[j].apply.Wall, pairs[j].ideal.Wall)
		})
		if len(pairs) > 1 {
			var all []string
			for _, r := range pairs {
				all = append(all, fmt.Sprintf("%.2f×", ratio(r.apply.Wall, r.ideal.Wall)))
			}
			trialNotes = append(trialNotes, fmt.Sprintf("%s: apply÷ideal of the %d pairs: %s (the median is in the table)", sc.Name, len(pairs), strings.Join(all, ", ")))
		}
		results = append(results, pairs[len(pairs)/2])
	}
	report(results)
	for _, n := range trialNotes {
		fmt.Println(n)
	}
	fmt.Printf("\nhost load average at the end: %s\n", loadAverage())
	if !checkTargets(results) {
		return errors.New("a target was missed (see above)")
	}
	return nil
}

func report(results []result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tapply\tideal\tapply÷ideal\treq/runner\t429s\tmax RSS\tre-apply\twrites\treads÷limit\t")
	for _, r := range results {
		a, re, id := r.apply, r.reapply, r.ideal
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f×\t%.3f\t%d (ideal %d)\t%s\t%s\t%d\t%s\t\n",
			r.sc.Name, secs(a.Wall), secs(id.Wall), ratio(a.Wall, id.Wall), perRunner(a.Requests, r.sc.N), a.Count429+re.Count429, id.Count429,
			mb(max(a.MaxRSSKB, re.MaxRSSKB)), secs(re.Wall), re.Writes, limitCell(readsAtLimit(r)))
	}
	_ = tw.Flush()
	fmt.Println("\n(ideal: 2 writes a runner, the same concurrency in flight, obeying RateLimit-* with the server's own clock;\n reads÷limit: the time the re-apply's reads need at exactly the limit.)")
	for _, r := range results {
		if r.sc.Spent > 0 {
			fmt.Printf("%s: each run starts with %d of the window's %d requests spent and %s left in it.\n", r.sc.Name, r.sc.Spent, r.sc.Limit, r.sc.Left)
		}
	}
}

func checkTargets(results []result) bool {
	fmt.Println("\ntargets:")
	ok := true
	check := func(pass bool, format string, args ...any) {
		mark := "ok  "
		if !pass {
			mark, ok = "MISS", false
		}
		fmt.Printf("  %s %s\n", mark, fmt.Sprintf(format, args...))
	}
	for _, r := range results {
		sc, a, re, id := r.sc, r.apply, r.reapply, r.ideal
		check(a.Err == nil && a.Stored == sc.N, "%s: apply stored %d of %d tokens%s", sc.Name, a.Stored, sc.N, errSuffix(a.Err))
		check(id.Err == nil && id.Stored == sc.N, "%s: the ideal client stored %d of %d tokens%s", sc.Name, id.Stored, sc.N, errSuffix(id.Err))
		check(ratio(a.Wall, id.Wall) <= 1.10, "%s: apply within 1.10× of the ideal client: %.2f×", sc.Name, ratio(a.Wall, id.Wall))
		check(a.Count429+re.Count429 == 0, "%s: zero 429s: %d (apply) + %d (re-apply)", sc.Name, a.Count429, re.Count429)
		// Shards keep each owner's entries together, so together they read each owner once, as
		// one process does.
		check(perRunner(a.Requests, sc.N) <= 2.05, "%s: ≤ 2.05 requests a runner on a first apply: %.3f", sc.Name, perRunner(a.Requests, sc.N))
		check(re.Err == nil && re.Writes == 0, "%s: re-apply makes zero writes: %d%s", sc.Name, re.Writes, errSuffix(re.Err))
		if sc.Limit > 0 {
			check(re.Wall <= readsAtLimit(r), "%s: re-apply within the time its %d reads need at the limit (%s): %s", sc.Name, re.Requests, secs(readsAtLimit(r)), secs(re.Wall))
		}
	}
	return ok
}

// readsAtLimit is the time the re-apply's requests take at exactly the limit.
func readsAtLimit(r result) time.Duration {
	if r.sc.Limit == 0 {
		return 0
	}
	return time.Duration(float64(r.reapply.Requests) / float64(r.sc.Limit) * float64(time.Minute))
}

// world starts a seeded fake with the scenario's latency, throttle and projects, its clock
// set so that the throttle's window is as the scenario says.
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
	fake.SetLatency(latency)
	if sc.Limit > 0 {
		fake.SetThrottle(gitlabfake.Throttle{Requests: sc.Limit, Period: time.Minute, HeadersOnEveryAnswer: true})
	}
	if sc.Left > 0 {
		// Shift the fake's clock so that its window ends Left from now.
		now := time.Now()
		end := now.Truncate(time.Minute).Add(time.Minute)
		shift := sc.Left - end.Sub(now)
		fake.SetClock(func() time.Time { return time.Now().Add(-shift) })
	}
	fake.SpendRateLimit(seed.OwnerToken, sc.Spent)
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
	manifest := filepath.Join(tmp, fmt.Sprintf("fleet-%d-%d.yaml", sc.N, sc.Shards))
	if err := os.WriteFile(manifest, []byte(b.String()), 0o600); err != nil {
		return run{Err: err}, run{Err: err}
	}
	first = applyShards(fake, seed, bin, manifest, "created", sc)
	first.Stored = storedTokens(fake)
	// A later run (the next pipeline) starts in a window of its own.
	if sc.Limit > 0 {
		now := fake.AdvanceClock(0)
		fake.AdvanceClock(now.Truncate(time.Minute).Add(time.Minute).Sub(now))
	}
	second = applyShards(fake, seed, bin, manifest, "unchanged", sc)
	return first, second
}

// applyShards runs sc.Shards apply processes at once against one fake.
func applyShards(fake *gitlabfake.Server, seed gitlabfake.Seed, bin, manifest, want string, sc scenario) run {
	fake.ResetRequests()
	before429 := fake.Count429()
	runs := make([]run, sc.Shards)
	results := make([]int, sc.Shards)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range runs {
		wg.Go(func() {
			runs[i], results[i] = applyOnce(seed, bin, manifest, want, fmt.Sprintf("%d/%d", i+1, sc.Shards))
		})
	}
	wg.Wait()
	r := run{Wall: time.Since(start), Requests: len(fake.Requests()), Writes: fake.Writes(), Count429: fake.Count429() - before429}
	total := 0
	for i, sr := range runs {
		r.MaxRSSKB = max(r.MaxRSSKB, sr.MaxRSSKB)
		r.Err = errors.Join(r.Err, sr.Err)
		total += results[i]
	}
	if r.Err == nil && total != sc.N {
		r.Err = fmt.Errorf("expected %d %s, got %d", sc.N, want, total)
	}
	return r
}

func applyOnce(seed gitlabfake.Seed, bin, manifest, want, shard string) (run, int) {
	cmd := exec.Command(bin, "apply", "--file", manifest, "--output", "json", "--concurrency", fmt.Sprint(concurrency), "--timeout", "30m", "--shard", shard)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "GITLAB_TOKEN=" + seed.OwnerToken, "CI_SERVER_URL=" + seed.URL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var r run
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.MaxRSSKB = ru.Maxrss // KiB on Linux
	}
	var out struct {
		Summary struct {
			Results map[string]int `json:"results"`
		} `json:"summary"`
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil {
		r.Err = fmt.Errorf("shard %s: %w\n%s", shard, err, lastLines(stderr.String(), 15))
	}
	return r, out.Summary.Results[want]
}

// idealRun is the reference: on its own fake configured like apply's, each of sc.Shards ×
// concurrency workers creates runners and stores their tokens, and nothing else.
func idealRun(sc scenario) run {
	fake, seed, projects := world(sc)
	defer fake.Close()
	c := &idealClient{base: seed.URL + "/api/v4", token: seed.OwnerToken, serverNow: func() time.Time { return fake.AdvanceClock(0) }}
	c.wake = make(chan struct{})
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	start := time.Now()
	for w := 0; w < sc.Shards*concurrency; w++ {
		wg.Go(func() {
			for i := range work {
				p, key, desc := entry(i, projects)
				if err := c.runner(p, key, desc); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := 0; i < sc.N; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	r := run{Wall: time.Since(start), Requests: len(fake.Requests()), Writes: fake.Writes(), Count429: fake.Count429(), Stored: storedTokens(fake)}
	select {
	case r.Err = <-errs:
	default:
	}
	return r
}

// idealClient spends the announced budget to the last request, and when it is gone waits
// exactly until the server's window ends, on the server's own clock.
type idealClient struct {
	base, token string
	serverNow   func() time.Time

	mu        sync.Mutex
	wake      chan struct{}
	window    int64 // RateLimit-Reset of the window known
	limit     int
	remaining int
	inflight  int
}

func (c *idealClient) runner(project int64, key, desc string) error {
	var created struct {
		Token string `json:"token"`
	}
	form := url.Values{"runner_type": {"project_type"}, "project_id": {strconv.FormatInt(project, 10)}, "description": {desc}, "tag_list": {"bench"}}
	if err := c.post("/user/runners", form, &created); err != nil {
		return err
	}
	form = url.Values{"key": {key}, "value": {created.Token}, "masked": {"true"}, "hidden": {"true"}, "protected": {"true"}}
	return c.post(fmt.Sprintf("/projects/%d/variables", project), form, nil)
}

func (c *idealClient) post(path string, form url.Values, out any) error {
	for {
		c.acquire()
		resp, err := http.PostForm(c.base+path+"?private_token="+url.QueryEscape(c.token), form)
		c.done(resp)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			continue // the gate now waits for the window's end
		}
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, body)
		}
		if out != nil {
			return json.Unmarshal(body, out)
		}
		return nil
	}
}

func (c *idealClient) acquire() {
	for {
		c.mu.Lock()
		now := c.serverNow().Unix()
		if c.limit > 0 && now >= c.window {
			// A new window: the whole limit is there again.
			c.window, c.remaining = now+60-now%60, c.limit
		}
		if c.limit == 0 || c.remaining-c.inflight > 0 {
			c.inflight++
			c.mu.Unlock()
			return
		}
		now2 := c.serverNow()
		wait := now2.Truncate(time.Minute).Add(time.Minute).Sub(now2) // to the server's window end
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-time.After(wait):
		}
	}
}

func (c *idealClient) done(resp *http.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	defer func() { close(c.wake); c.wake = make(chan struct{}) }()
	if resp == nil {
		return
	}
	limit, err1 := strconv.Atoi(resp.Header.Get("RateLimit-Limit"))
	remaining, err2 := strconv.Atoi(resp.Header.Get("RateLimit-Remaining"))
	reset, err3 := strconv.ParseInt(resp.Header.Get("RateLimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	c.limit = limit
	switch {
	case reset > c.window:
		c.window, c.remaining = reset, remaining
	case reset == c.window:
		c.remaining = min(c.remaining, remaining)
	}
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

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return a.Seconds() / b.Seconds()
}

func perRunner(req, n int) float64 { return float64(req) / float64(n) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func mb(kb int64) string {
	if kb == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB", float64(kb)/1024)
}

func limitCell(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return secs(d)
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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

func moduleRoot() (string, error) {
	out, err := exec.CommandContext(context.Background(), "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}
