package faults

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// call is one API endpoint as a fault matches it: method and path pattern after /api/v4.
type call struct {
	Method string
	Path   string
}

func (c call) String() string { return c.Method + " " + c.Path }

// literal path segments; every other segment (ids, paths, keys) becomes "*".
var literals = map[string]bool{
	"projects": true, "groups": true, "runners": true, "user": true, "variables": true, "admin": true, "ci": true,
	"reset_authentication_token": true, "managers": true, "all": true, "verify": true, "descendant_groups": true, "metadata": true,
}

// callOf turns a request the fake logged into the call pattern a Fault matches.
func callOf(r gitlabfake.Request) call {
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.RawPath, "/api/v4"), "/"), "/")
	for i, s := range segs {
		if !literals[s] {
			segs[i] = "*"
		}
	}
	return call{Method: r.Method, Path: "/" + strings.Join(segs, "/")}
}

// target is the variable every scenario stores its token in.
var target = Target{Owner: "project", OwnerID: gitlabfake.SeedDeployProjectID, Key: "RUNNER_TOKEN", Scope: "*"}

const description = "fault matrix"

func createArgs(extra ...string) []string {
	return append([]string{"create", "--project-id", "42", "--description", description}, extra...)
}

// scenario is a starting state and the command whose API calls are faulted.
type scenario struct {
	command string
	args    []string
	// prepare builds the starting state.
	prepare func(w *world)
	// check lists what is wrong with the state after a successful run.
	check func(before, after gitlabfake.State) []string
}

func converged(_, after gitlabfake.State) []string {
	p := Converged(after, target)
	if len(after.Runners) != 1 {
		p = append(p, fmt.Sprintf("%d runners exist, want exactly one", len(after.Runners)))
	} else if after.Runners[0].Description != description {
		p = append(p, fmt.Sprintf("the runner's description is %q, want %q", after.Runners[0].Description, description))
	}
	return p
}

var scenarios = map[string]scenario{
	// A first create: nothing exists yet.
	"create": {command: "create", args: createArgs(), check: converged},
	// A re-run with the same spec: it only reads.
	"create-unchanged": {command: "create", args: createArgs(), prepare: func(w *world) { w.mustRun(createArgs()...) }, check: converged},
	// A changed spec: the runner is updated in place.
	"create-drift": {
		command: "create", args: createArgs("--tag-list", "new"),
		prepare: func(w *world) { w.mustRun(createArgs("--tag-list", "old")...) },
		check: func(b, a gitlabfake.State) []string {
			p := converged(b, a)
			if len(a.Runners) == 1 && !slices.Equal(a.Runners[0].TagList, []string{"new"}) {
				p = append(p, fmt.Sprintf("the runner's tags are %v, want [new]", a.Runners[0].TagList))
			}
			return p
		},
	},
	// The recorded runner was deleted out of band: a new one replaces it in the same variable.
	"create-replace": {
		command: "create", args: createArgs(),
		prepare: func(w *world) {
			w.mustRun(createArgs()...)
			w.fake.DeleteRunnerDirect(w.fake.Runners()[0].ID)
		},
		check: converged,
	},
	// A killed run left a marked runner whose token is stored nowhere: it is deleted first.
	"create-orphan": {command: "create", args: createArgs(), prepare: plantOrphan, check: converged},
	// A rotation of a stored token.
	"rotate": {
		command: "rotate", args: []string{"rotate", "--project-id", "42"},
		prepare: func(w *world) { w.mustRun(createArgs()...) },
		check: func(b, a gitlabfake.State) []string {
			p := converged(b, a)
			if len(a.Runners) == 1 && len(b.Runners) == 1 && a.Runners[0].Token == b.Runners[0].Token {
				p = append(p, "the runner's token was not rotated")
			}
			return p
		},
	},
	// The adoption of a runner made in the UI, whose token a host uses.
	"adopt": {
		command: "adopt", args: []string{"adopt", "--runner-id", "1000"},
		prepare: plantHandMade,
		check: func(b, a gitlabfake.State) []string {
			p := converged(b, a)
			if len(a.Runners) == 1 && len(b.Runners) == 1 {
				if a.Runners[0].ID != b.Runners[0].ID {
					p = append(p, fmt.Sprintf("runner %d replaced the adopted runner %d", a.Runners[0].ID, b.Runners[0].ID))
				}
				if a.Runners[0].Token == b.Runners[0].Token {
					p = append(p, "the adopted runner's token was not reset")
				}
				if !strings.HasPrefix(a.Runners[0].MaintenanceNote, handMadeNote+"\n") || strings.Contains(a.Runners[0].MaintenanceNote, record.AdoptMarker) {
					p = append(p, fmt.Sprintf("the adopted runner's maintenance note is %q, want the person's note and the tool's marker", a.Runners[0].MaintenanceNote))
				}
			}
			return p
		},
	},
	// A rotation after the runner's rotation deadline (GitLab EE 18.10+): GitLab refuses a
	// reset, so the runner is replaced by a new one whose token goes into the same variable.
	"rotate-recreate": {
		command: "rotate", args: []string{"rotate", "--project-id", "42"},
		prepare: func(w *world) {
			w.mustRun(createArgs("--token-expires-in", "2h", "--token-rotation-deadline-in", "10m")...)
			w.fake.AdvanceClock(15 * time.Minute)
		},
		check: func(b, a gitlabfake.State) []string {
			p := converged(b, a)
			if len(a.Runners) == 1 && len(b.Runners) == 1 && a.Runners[0].ID == b.Runners[0].ID {
				p = append(p, "the runner past its rotation deadline was not replaced")
			}
			return p
		},
	},
	// A first apply of a manifest (batched reads, then the writes of create).
	"apply": {command: "apply", args: []string{"apply", "--file", fleetFile}, check: converged},
	// A re-apply with no change: only reads.
	"apply-unchanged": {command: "apply", args: []string{"apply", "--file", fleetFile}, prepare: func(w *world) { w.mustRun("apply", "--file", fleetFile) }, check: converged},
	// A delete of a stored token and its runner.
	"delete": {
		command: "delete", args: []string{"delete", "--project-id", "42"},
		prepare: func(w *world) { w.mustRun(createArgs()...) },
		check: func(_, a gitlabfake.State) []string {
			p := Gone(a, target)
			if len(a.Runners) != 0 || len(a.Variables) != 0 {
				p = append(p, fmt.Sprintf("%d runners and %d variables left, want none", len(a.Runners), len(a.Variables)))
			}
			return p
		},
	},
}

// fleetFile is a one-entry manifest for the apply scenario: the same runner and variable as
// create's, so the same invariants apply.
var fleetFile = func() string {
	f, err := os.CreateTemp("", "rb-faults-fleet-*.yaml")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "runners:\n  - project_id: 42\n    description: %s\n    variable: {key: %s}\n", description, target.Key)
	return f.Name()
}()

// plantOrphan creates a runner marked for the target the way a create killed after POST
// /user/runners leaves it.
func plantOrphan(w *world) {
	c, err := gitlab.New(gitlab.Config{BaseURL: w.seed.URL, Token: w.seed.MaintainerToken, NoRetries: true})
	if err != nil {
		w.t.Fatal(err)
	}
	note := record.ComposeNote("", record.Runner{Target: target.Marker(), CreatedAt: time.Now()})
	if _, err := c.CreateRunner(w.t.Context(), gitlab.RunnerAttrs{
		Type: spec.ProjectType, ProjectID: target.OwnerID, Description: description, RunUntagged: true,
		AccessLevel: spec.NotProtected, MaintenanceNote: note,
	}); err != nil {
		w.t.Fatal(err)
	}
}

const handMadeNote = "made in the UI"

// plantHandMade creates runner 1000 (the fake's first id) the way a person does in the UI: no marker, its token pasted
// into a host that polls with it.
func plantHandMade(w *world) {
	c, err := gitlab.New(gitlab.Config{BaseURL: w.seed.URL, Token: w.seed.MaintainerToken, NoRetries: true})
	if err != nil {
		w.t.Fatal(err)
	}
	nt, err := c.CreateRunner(w.t.Context(), gitlab.RunnerAttrs{
		Type: spec.ProjectType, ProjectID: target.OwnerID, Description: description, RunUntagged: true,
		AccessLevel: spec.NotProtected, MaintenanceNote: handMadeNote,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if nt.RunnerID != 1000 {
		w.t.Fatalf("the hand-made runner got id %d; the adopt scenario names runner 1000", nt.RunnerID)
	}
	w.fake.ContactRunner(nt.RunnerID, "s_host00000001")
}

// row is one API call of one scenario to inject faults into: the (skip+1)-th request matching
// call in the scenario's run. Every call a clean run of create, rotate, delete or apply makes must
// have a row (TestFaultMatrix fails otherwise), so a new call is covered by adding one here.
type row struct {
	scenario string
	call     call
	skip     int
	step     string
	// bestEffort marks a call whose failure the command may survive: it then has to finish
	// with the invariants holding, as for any success.
	bestEffort bool
}

func (r row) name() string {
	return fmt.Sprintf("%s/%s_%s#%d", r.scenario, r.call.Method, strings.ReplaceAll(strings.Trim(r.call.Path, "/"), "/", "_"), r.skip+1)
}

var (
	getProject     = call{"GET", "/projects/*"}
	getVariable    = call{"GET", "/projects/*/variables/*"}
	listRunners    = call{"GET", "/projects/*/runners"}
	getRunner      = call{"GET", "/runners/*"}
	createRunner   = call{"POST", "/user/runners"}
	updateRunner   = call{"PUT", "/runners/*"}
	deleteRunner   = call{"DELETE", "/runners/*"}
	resetToken     = call{"POST", "/runners/*/reset_authentication_token"}
	createVariable = call{"POST", "/projects/*/variables"}
	updateVariable = call{"PUT", "/projects/*/variables/*"}
	removeVariable = call{"DELETE", "/projects/*/variables/*"}
	listVariables  = call{"GET", "/projects/*/variables"}
	verifyToken    = call{"POST", "/runners/verify"}
	removeManager  = call{"DELETE", "/runners/managers"}
	listManagers   = call{"GET", "/runners/*/managers"}
	getMetadata    = call{"GET", "/metadata"}
)

var rows = []row{
	{scenario: "create", call: getMetadata, step: "read the GitLab version"},
	{scenario: "create", call: getProject, step: "resolve the project"},
	{scenario: "create", call: getVariable, step: "read the variable"},
	{scenario: "create", call: listRunners, step: "list runners to delete orphans"},
	{scenario: "create", call: createRunner, step: "create the marked runner"},
	{scenario: "create", call: listRunners, skip: 1, step: "look for a newer marked runner"},
	{scenario: "create", call: createVariable, step: "store the token in a new variable"},
	{scenario: "create", call: getVariable, skip: 1, step: "read the variable back", bestEffort: true},
	{scenario: "create", call: listRunners, skip: 2, step: "delete older marked runners"},
	{scenario: "create-unchanged", call: getRunner, step: "read the recorded runner"},
	{scenario: "create-drift", call: updateRunner, step: "update the runner in place"},
	{scenario: "create-replace", call: updateVariable, step: "store the replacement's token in the existing variable"},
	{scenario: "create-orphan", call: getRunner, step: "read a candidate orphan's marker"},
	{scenario: "create-orphan", call: deleteRunner, step: "delete the orphan"},
	{scenario: "rotate", call: getProject, step: "resolve the project"},
	{scenario: "rotate", call: getVariable, step: "read the variable's record"},
	{scenario: "rotate", call: getRunner, step: "read the runner"},
	{scenario: "rotate", call: getMetadata, step: "learn the version (is there a managers route?)", bestEffort: true},
	{scenario: "rotate", call: listManagers, step: "read the managers that use the token"},
	{scenario: "rotate", call: updateVariable, step: "mark the variable rotation_pending"},
	{scenario: "rotate", call: resetToken, step: "reset the token"},
	{scenario: "rotate", call: updateVariable, skip: 1, step: "store the new token"},
	{scenario: "rotate", call: verifyToken, step: "check that the stored token is the runner's current one", bestEffort: true},
	{scenario: "rotate", call: removeManager, step: "remove the manager the check recorded", bestEffort: true},
	{scenario: "adopt", call: getRunner, step: "read the runner (type, owner, marker)"},
	{scenario: "adopt", call: getProject, step: "resolve the project"},
	{scenario: "adopt", call: getVariable, step: "read the variable"},
	{scenario: "adopt", call: getMetadata, step: "learn the version (is there a managers route?)", bestEffort: true},
	{scenario: "adopt", call: listManagers, step: "count the managers that use the current token"},
	{scenario: "adopt", call: updateRunner, step: "write the pending adoption line"},
	{scenario: "adopt", call: resetToken, step: "reset the token"},
	{scenario: "adopt", call: createVariable, step: "store the new token"},
	{scenario: "adopt", call: updateRunner, skip: 1, step: "replace the pending line with the marker"},
	{scenario: "rotate", call: listRunners, step: "look for leftover marked runners", bestEffort: true},
	{scenario: "rotate-recreate", call: getRunner, step: "read the runner past its deadline"},
	{scenario: "rotate-recreate", call: listRunners, step: "delete orphans before creating the replacement"},
	{scenario: "rotate-recreate", call: createRunner, step: "create the marked replacement runner"},
	{scenario: "rotate-recreate", call: listRunners, skip: 1, step: "look for a newer marked runner"},
	{scenario: "rotate-recreate", call: updateVariable, step: "store the replacement's token", bestEffort: true},
	{scenario: "rotate-recreate", call: getVariable, skip: 1, step: "read the variable back", bestEffort: true},
	{scenario: "rotate-recreate", call: deleteRunner, step: "delete the old runner"},
	{scenario: "apply", call: getMetadata, step: "read the GitLab version"},
	{scenario: "apply", call: getProject, step: "resolve the project"},
	{scenario: "apply", call: listVariables, step: "list the owner's variables once"},
	{scenario: "apply", call: listRunners, step: "list the owner's runners once"},
	{scenario: "apply", call: createRunner, step: "create the marked runner"},
	{scenario: "apply", call: createVariable, step: "store the token in a new variable"},
	{scenario: "apply", call: listVariables, skip: 1, step: "read the variables back", bestEffort: true},
	{scenario: "apply-unchanged", call: getRunner, step: "read the recorded runner"},
	{scenario: "delete", call: getMetadata, step: "read the GitLab version"},
	{scenario: "delete", call: getProject, step: "resolve the project"},
	{scenario: "delete", call: getVariable, step: "read the variable's record"},
	{scenario: "delete", call: getRunner, step: "read the recorded runner (its owner)"},
	{scenario: "delete", call: deleteRunner, step: "delete the recorded runner"},
	{scenario: "delete", call: listRunners, step: "list runners marked for the variable"},
	{scenario: "delete", call: removeVariable, step: "delete the variable"},
}

// faultKind is one way a call can go wrong.
type faultKind struct {
	name  string
	fault func(c call, skip int) gitlabfake.Fault
	// flags are added to the faulted run.
	flags []string
	// kill means SIGKILL of the process while the call is in flight.
	kill bool
	// acted means GitLab carried the call out although no answer arrived: a command that
	// reads back and finds it done may succeed, with the invariants holding.
	acted bool
}

func status(code, retryAfter int) func(call, int) gitlabfake.Fault {
	return func(c call, skip int) gitlabfake.Fault {
		return gitlabfake.Fault{Method: c.Method, Path: c.Path, Skip: skip, Status: code, RetryAfter: retryAfter}
	}
}

// persistent faults apply to every matching request after the skipped ones, so the retries
// cannot absorb them.
var persistent = []faultKind{
	{name: "500", fault: status(500, 0)},
	{name: "502", fault: status(502, 0)},
	{name: "503", fault: status(503, 0)},
	{name: "429", fault: status(429, 1)},
	{name: "drop", fault: func(c call, skip int) gitlabfake.Fault {
		return gitlabfake.Fault{Method: c.Method, Path: c.Path, Skip: skip, Drop: true}
	}},
	{name: "drop-after-act", acted: true, fault: func(c call, skip int) gitlabfake.Fault {
		return gitlabfake.Fault{Method: c.Method, Path: c.Path, Skip: skip, DropAfterAct: true}
	}},
	{name: "stall", flags: []string{"--request-timeout", "2s"}, fault: func(c call, skip int) gitlabfake.Fault {
		return gitlabfake.Fault{Method: c.Method, Path: c.Path, Skip: skip, Stall: 6 * time.Second}
	}},
	{name: "sigkill", kill: true, fault: func(c call, skip int) gitlabfake.Fault {
		return gitlabfake.Fault{Method: c.Method, Path: c.Path, Skip: skip, Stall: time.Minute, Times: 1}
	}},
}

// cleanCalls records, per scenario, the calls of a run without faults, in order.
func cleanCalls(t *testing.T) map[string][]call {
	t.Helper()
	out := map[string][]call{}
	for name, sc := range scenarios {
		w := newWorld(t)
		if sc.prepare != nil {
			sc.prepare(w)
		}
		w.fake.ResetRequests()
		if o := w.run(sc.args...); o.code != 0 {
			t.Fatalf("clean run of scenario %s failed: %s", name, o)
		}
		for _, r := range w.fake.Requests() {
			out[name] = append(out[name], callOf(r))
		}
	}
	return out
}

// checkRows fails when a clean run makes a call that no row covers, or a row names a call its
// scenario no longer makes.
func checkRows(t *testing.T, clean map[string][]call) {
	t.Helper()
	covered := map[string]bool{}
	for _, r := range rows {
		sc, ok := scenarios[r.scenario]
		if !ok {
			t.Errorf("row %s: no scenario %q", r.name(), r.scenario)
			continue
		}
		covered[sc.command+" "+r.call.String()] = true
		n := 0
		for _, c := range clean[r.scenario] {
			if c == r.call {
				n++
			}
		}
		if n <= r.skip {
			t.Errorf("row %s: a clean run of scenario %s makes %s only %d times; update the row", r.name(), r.scenario, r.call, n)
		}
	}
	names := make([]string, 0, len(clean))
	for name := range clean {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, c := range clean[name] {
			if key := scenarios[name].command + " " + c.String(); !covered[key] {
				covered[key] = true // report each missing call once
				t.Errorf("%s makes %s (seen in scenario %s) but no row injects faults into it: add a row", scenarios[name].command, c, name)
			}
		}
	}
}

// sentenceBreak finds a second sentence in an error line.
var sentenceBreak = regexp.MustCompile(`[.!?] +[A-Z]`)

// checkSentence reports whether a failed run ended with one sentence and printed no result.
func checkSentence(o outcome, command string) []string {
	var p []string
	last := o.lastLine()
	if !strings.HasPrefix(last, "runner-bootstrap: ") || !strings.HasSuffix(last, ".") {
		p = append(p, fmt.Sprintf("the error is not one line starting with the program name and ending with a full stop: %q", last))
	}
	if sentenceBreak.MatchString(strings.TrimPrefix(last, "runner-bootstrap: ")) {
		p = append(p, fmt.Sprintf("the error is more than one sentence: %q", last))
	}
	// apply reports every entry, failed ones included, so its stdout carries the table.
	if o.stdout != "" && command != "apply" {
		p = append(p, fmt.Sprintf("a failed run printed a result on stdout: %q", o.stdout))
	}
	return p
}

// parallelism bounds how many cases run at once. The cases mostly wait (stalls, Retry-After,
// backoff), so far more run at once than there are CPUs; -test.parallel (GOMAXPROCS by
// default) would serialise them.
func parallelism() int { return max(16, 4*runtime.GOMAXPROCS(0)) }

// runConcurrently runs one subtest per case, n at a time, and returns how many passed.
func runConcurrently[C any](t *testing.T, cases []C, name func(C) string, body func(*testing.T, C)) int {
	t.Helper()
	sem := make(chan struct{}, parallelism())
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		passed int
	)
	for _, c := range cases {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if t.Run(name(c), func(t *testing.T) { body(t, c) }) {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return passed
}

type matrixCase struct {
	row   row
	fault faultKind
}

// TestFaultMatrix injects every persistent fault into every API call of create, rotate and
// delete, runs the built binary with --max-retries 1, then runs the same command again with
// the faults off and checks the invariants: one runner per spec whose current token the
// variable holds, no marked runner left that no variable references (nothing at all after
// delete), and no token in any output. A failed first run must say so in one sentence.
func TestFaultMatrix(t *testing.T) {
	start := time.Now()
	clean := cleanCalls(t)
	checkRows(t, clean)
	if t.Failed() {
		t.FailNow()
	}
	var cases []matrixCase
	for _, r := range rows {
		for _, f := range persistent {
			cases = append(cases, matrixCase{r, f})
		}
	}
	var (
		mu      sync.Mutex
		summary []string
	)
	passed := runConcurrently(t, cases, func(c matrixCase) string { return c.row.name() + "/" + c.fault.name }, func(t *testing.T, c matrixCase) {
		sc := scenarios[c.row.scenario]
		w := newWorld(t)
		if sc.prepare != nil {
			sc.prepare(w)
		}
		before := w.snapshot()
		w.fake.ResetRequests()
		w.fake.AddFault(c.fault.fault(c.row.call, c.row.skip))
		args := append(append(slices.Clone(sc.args), "--max-retries", "1"), c.fault.flags...)

		var first outcome
		if c.fault.kill {
			var err error
			if first, err = w.runKilled(args...); err != nil {
				t.Fatal(err)
			}
		} else {
			first = w.run(args...)
			if first.code == 0 {
				// A success must be true even if the fault hit a call the command can do without.
				if !c.row.bestEffort && !c.fault.acted {
					t.Errorf("exit 0 although %s failed persistently (%s):\n%s", c.row.call, c.row.step, first)
				}
				if p := sc.check(before, w.snapshot()); len(p) > 0 {
					t.Errorf("the first run succeeded but the state is wrong:\n  %s\n%s", strings.Join(p, "\n  "), first)
				}
			} else if p := checkSentence(first, sc.command); len(p) > 0 {
				t.Errorf("%s\n%s", strings.Join(p, "\n"), first)
			}
		}
		w.snapshot()
		mu.Lock()
		summary = append(summary, fmt.Sprintf("%-58s %-15s exit %3d  %s", c.row.name(), c.fault.name, first.code, msgOf(first)))
		mu.Unlock()

		w.fake.ClearFaults()
		again := w.run(sc.args...)
		if again.code != 0 {
			t.Fatalf("the re-run without faults failed:\n%s\nfirst run:\n%s", again, first)
		}
		if p := sc.check(before, w.snapshot()); len(p) > 0 {
			t.Errorf("after the re-run:\n  %s\nfirst run:\n%s\nre-run:\n%s", strings.Join(p, "\n  "), first, again)
		}
		if p := w.leaks(); len(p) > 0 {
			t.Errorf("a token was printed: %s", strings.Join(p, "; "))
		}
	})
	sort.Strings(summary)
	t.Logf("first runs:\n%s", strings.Join(summary, "\n"))
	t.Logf("fault matrix: %d faults × %d calls = %d cases, %d passed (%s)", len(persistent), len(rows), len(cases), passed, time.Since(start).Round(time.Second))
}

func msgOf(o outcome) string {
	switch {
	case o.killed:
		return "(killed while the call was in flight)"
	case o.code == 0:
		return "(succeeded)"
	}
	return strings.TrimPrefix(o.lastLine(), "runner-bootstrap: ")
}

// Transient faults hit once; the default retries must absorb them. An answer (5xx, 429) is
// retried for idempotent calls, a 429 for every call (GitLab did not act).
var answered = []faultKind{
	{name: "503-once", fault: func(c call, skip int) gitlabfake.Fault {
		return gitlabfake.Fault{Method: c.Method, Path: c.Path, Skip: skip, Status: 503, Times: 1}
	}},
	{name: "429-once", fault: func(c call, skip int) gitlabfake.Fault {
		return gitlabfake.Fault{Method: c.Method, Path: c.Path, Skip: skip, Status: 429, RetryAfter: 1, Times: 1}
	}},
}

// unanswered faults leave the client without an answer once: a dropped connection (twice for
// a GET, because Go's transport silently retries an idempotent request once on a reused
// connection) or a stall past --request-timeout. README and the --max-retries and
// --request-timeout help promise a retry for every call but a POST.
var unanswered = []faultKind{
	{name: "drop-once", fault: func(c call, skip int) gitlabfake.Fault {
		return gitlabfake.Fault{Method: c.Method, Path: c.Path, Skip: skip, Drop: true, Times: 2}
	}},
	{name: "stall-once", flags: []string{"--request-timeout", "2s"}, fault: func(c call, skip int) gitlabfake.Fault {
		return gitlabfake.Fault{Method: c.Method, Path: c.Path, Skip: skip, Stall: 6 * time.Second, Times: 1}
	}},
}

// TestTransientFaultsAreAbsorbed runs every row with the default --max-retries and a 503 or a
// 429 that hits once: the first run must succeed and leave the invariants holding. (A 503 on a
// POST is not retried: GitLab may have acted.)
func TestTransientFaultsAreAbsorbed(t *testing.T) {
	var cases []matrixCase
	for _, r := range rows {
		for _, f := range answered {
			if r.call.Method != "POST" || f.name == "429-once" {
				cases = append(cases, matrixCase{r, f})
			}
		}
	}
	runAbsorbed(t, "answered transient faults", cases)
}

// TestNoAnswerIsRetried runs every idempotent call (GET, PUT, DELETE) with the default
// --max-retries and a dropped connection or a request timeout that happens once: the retries
// must absorb it as they absorb a 503.
func TestNoAnswerIsRetried(t *testing.T) {
	var cases []matrixCase
	for _, r := range rows {
		for _, f := range unanswered {
			if r.call.Method != "POST" {
				cases = append(cases, matrixCase{r, f})
			}
		}
	}
	runAbsorbed(t, "unanswered transient faults", cases)
}

func runAbsorbed(t *testing.T, what string, cases []matrixCase) {
	start := time.Now()
	passed := runConcurrently(t, cases, func(c matrixCase) string { return c.row.name() + "/" + c.fault.name }, func(t *testing.T, c matrixCase) {
		sc := scenarios[c.row.scenario]
		w := newWorld(t)
		if sc.prepare != nil {
			sc.prepare(w)
		}
		before := w.snapshot()
		w.fake.AddFault(c.fault.fault(c.row.call, c.row.skip))
		o := w.run(append(slices.Clone(sc.args), c.fault.flags...)...)
		if o.code != 0 {
			t.Fatalf("%s on %s (%s) was not absorbed by the retries: exit %d: %s", c.fault.name, c.row.call, c.row.step, o.code, o.lastLine())
		}
		if p := sc.check(before, w.snapshot()); len(p) > 0 {
			t.Errorf("%s\n%s", strings.Join(p, "\n"), o)
		}
		if p := w.leaks(); len(p) > 0 {
			t.Errorf("a token was printed: %s", strings.Join(p, "; "))
		}
	})
	t.Logf("%s: %d cases, %d absorbed (%s)", what, len(cases), passed, time.Since(start).Round(time.Second))
}
