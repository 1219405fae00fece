package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// More exit codes documented in the README.
const (
	exitFailure  = 1
	exitConflict = 5
)

// GitLab's own error bodies (shared/reference/gitlab-api.md).
const (
	body401         = `{"message":"401 Unauthorized"}`
	body401Expired  = `{"error":"invalid_token","error_description":"Token is expired. You can either do re-authorization or token refresh."}`
	body403Scope    = `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api create_runner"}`
	body403         = `{"message":"403 Forbidden"}`
	body403Perm     = `{"message":"403 Forbidden - Insufficient permissions"}`
	body404Project  = `{"message":"404 Project Not Found"}`
	body404Runner   = `{"message":"404 Runner Not Found"}`
	body409Multiple = `{"message":"There are multiple variables with provided parameters. Please use 'filter[environment_scope]'"}`
	body410         = `{"message":"410 Gone - runner registration disallowed"}`
	body422Orphaned = `{"message":"422 Unprocessable Entity - Runner is orphaned"}`
	body400Value    = `{"message":{"value":["is invalid"]}}`
)

// TestBadServerAnswers: GitLab refusing a request, at any step of create, rotate, status or
// delete, gives one clear sentence, a documented exit code, nothing on stdout, and leaves
// GitLab as it was (a runner created before the refusal is deleted again).
func TestBadServerAnswers(t *testing.T) {
	create := []string{"create", "--project-id", "42"}
	rotate := []string{"rotate", "--project-id", "42"}
	del := []string{"delete", "--project-id", "42"}
	status := []string{"status", "--project-id", "42"}
	cases := []struct {
		name string
		// stored: a runner and its variable exist before the command runs.
		stored bool
		fault  gitlabfake.Fault
		args   []string
		code   int
		msg    string
	}{
		{name: "401 at the first call", fault: f("GET", "/projects/*", 401, body401), args: create, code: exitAuth,
			msg: "GitLab refused the access token (401 Unauthorized: it is unknown, expired or revoked)"},
		{name: "401 token expired mid-run", fault: f("POST", "/user/runners", 401, body401Expired), args: create, code: exitAuth,
			msg: "401 Unauthorized: Token is expired"},
		{name: "401 on rotate", stored: true, fault: f("GET", "/projects/*/variables/*", 401, body401), args: rotate, code: exitAuth,
			msg: "GitLab refused the access token"},
		{name: "403 scope on create", fault: f("POST", "/user/runners", 403, body403Scope), args: create, code: exitAuth,
			msg: "the access token lacks the scope for it (403 insufficient_scope; GitLab accepts api create_runner here)"},
		{name: "403 scope on the rotation mark", stored: true, fault: f("PUT", "/projects/*/variables/*", 403, body403Scope), args: rotate, code: exitAuth,
			msg: "lacks the scope"},
		{name: "403 role on create", fault: f("POST", "/user/runners", 403, body403Perm), args: create, code: exitAuth,
			msg: "GitLab answered 403 (403 Forbidden - Insufficient permissions); the token's user needs the Maintainer role on the project"},
		{name: "403 role on the variable", fault: f("GET", "/projects/*/variables/*", 403, body403), args: create, code: exitAuth,
			msg: "needs the Maintainer role on the project to manage its CI/CD variables"},
		{name: "403 role on delete", stored: true, fault: f("DELETE", "/runners/*", 403, body403), args: del, code: exitAuth,
			msg: "cannot delete runner"},
		{name: "404 project", fault: f("GET", "/projects/*", 404, body404Project), args: create, code: exitNotFound,
			msg: "was not found (404)"},
		{name: "404 runner on rotate", stored: true, fault: f("GET", "/runners/*", 404, body404Runner), args: rotate, code: exitNotFound,
			msg: "no longer exists: run runner-bootstrap create to replace it"},
		{name: "404 runner on status", stored: true, fault: f("GET", "/runners/*", 404, body404Runner), args: status, code: 11,
			msg: "no longer exists"},
		{name: "409 several scopes", stored: true, fault: f("GET", "/projects/*/variables/*", 409, body409Multiple), args: rotate, code: exitConflict,
			msg: "GitLab holds several variables with this key in different environment scopes (409); name the one you mean with --variable-environment-scope"},
		{name: "409 on delete", stored: true, fault: f("GET", "/projects/*/variables/*", 409, body409Multiple), args: del, code: exitConflict,
			msg: "several variables with this key"},
		{name: "410 gone", fault: f("POST", "/user/runners", 410, body410), args: create, code: exitConflict,
			msg: "GitLab rejected it (410): 410 Gone - runner registration disallowed"},
		{name: "422 on update", stored: true, fault: f("PUT", "/runners/*", 422, `{"message":{"maintenance_note":["is too long (maximum is 1024 characters)"]}}`),
			args: append(append([]string{}, create...), "--tag-list", "changed"), code: exitConflict, msg: "maintenance_note is too long (maximum is 1024 characters)"},
		{name: "400 value rejected", fault: f("POST", "/projects/*/variables", 400, body400Value), args: create, code: exitConflict,
			msg: "GitLab rejected it (400): value is invalid"},
		{name: "500 with an HTML page", fault: f("GET", "/projects/*", 500, "<html><body><h1>We're sorry, something went wrong</h1></body></html>"), args: create, code: exitFailure,
			msg: "GitLab failed with HTTP 500; the command is safe to run again"},
		{name: "500 on a POST, which is never repeated", fault: f("POST", "/user/runners", 500, ""), args: create, code: exitFailure,
			msg: "GitLab failed with HTTP 500 (not retried: GitLab may have acted on it)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t)
			tg.needFake(t)
			if tc.stored {
				tg.run(t, tg.seed.MaintainerToken, nil, create...).Assert(t, icmd.Success)
			}
			before := tg.fake.State()
			tg.fake.AddFault(tc.fault)
			res := tg.run(t, tg.seed.MaintainerToken, nil, append(tc.args, "--max-retries", "0")...)
			res.Assert(t, icmd.Expected{ExitCode: tc.code})
			assert.Check(t, is.Contains(res.Stderr(), tc.msg))
			errorLine(t, res, tc.args[0] != "status")
			assert.Check(t, is.DeepEqual(tg.fake.State(), before), "a refused request must leave GitLab unchanged")
		})
	}
}

// TestVariableWithSeveralScopes: the same key exists with two environment scopes, written by
// someone else. The tool addresses one scope exactly (it never triggers GitLab's 409), refuses
// to touch a variable it does not manage, and reports a scope that does not exist.
func TestVariableWithSeveralScopes(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	c, err := gitlab.New(gitlab.Config{BaseURL: tg.url, Token: tg.seed.MaintainerToken, NoRetries: true})
	assert.NilError(t, err)
	for _, scope := range []string{"production", "staging"} {
		v := token.Secret("not-a-runner-token-" + scope)
		desc := "deploy key for " + scope
		assert.NilError(t, c.CreateVariable(t.Context(), gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: 42, Key: "RUNNER_TOKEN", Scope: scope}, gitlab.VariableWrite{Value: &v, Description: &desc}))
	}
	before := tg.fake.State()
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"create", "--project-id", "42", "--variable-environment-scope", "production"}, exitConflict, "exists but was not written by runner-bootstrap"},
		{[]string{"rotate", "--project-id", "42", "--variable-environment-scope", "staging"}, exitConflict, "exists but was not written by runner-bootstrap"},
		{[]string{"delete", "--project-id", "42", "--variable-environment-scope", "staging"}, exitConflict, "exists but was not written by runner-bootstrap"},
		{[]string{"rotate", "--project-id", "42", "--variable-environment-scope", "review/*"}, exitNotFound, "does not exist: create the runner and store its token first"},
		{[]string{"rotate", "--project-id", "42"}, exitNotFound, "(scope *) does not exist"},
		{[]string{"status", "--project-id", "42", "--variable-environment-scope", "production"}, 12, "exists but was not written by runner-bootstrap"},
	}
	for _, tc := range cases {
		res := tg.run(t, tg.seed.MaintainerToken, nil, tc.args...)
		res.Assert(t, icmd.Expected{ExitCode: tc.code})
		assert.Check(t, is.Contains(res.Stderr(), tc.msg), strings.Join(tc.args, " "))
		errorLine(t, res, tc.args[0] != "status")
	}
	assert.Check(t, is.DeepEqual(tg.fake.State(), before), "nothing may change")
}

func f(method, path string, status int, body string) gitlabfake.Fault {
	return gitlabfake.Fault{Method: method, Path: path, Status: status, Body: body}
}

// errorLine: a failure ends stderr with one line naming the program and ending with a full
// stop; stdout stays empty, except for status, whose report is its result.
func errorLine(t *testing.T, res *icmd.Result, emptyStdout bool) {
	t.Helper()
	last := lastLine(res.Stderr())
	assert.Check(t, strings.HasPrefix(last, "runner-bootstrap: ") && strings.HasSuffix(last, "."), "error line: %q", last)
	if emptyStdout {
		assert.Check(t, is.Equal(res.Stdout(), ""), "a failure prints nothing on stdout")
	}
}

// TestServerMessagesAreOneSentence: GitLab's own multi-sentence texts are not pasted into the
// error, which stays one sentence the user can act on (GitLab's "Please use
// 'filter[environment_scope]'" means nothing to a user of this tool).
func TestServerMessagesAreOneSentence(t *testing.T) {
	cases := []struct {
		name  string
		fault gitlabfake.Fault
		args  []string
		code  int
		want  string
	}{
		{"401 token expired", f("POST", "/user/runners", 401, body401Expired), []string{"create", "--project-id", "42"},
			exitAuth, "GitLab refused the access token (401 Unauthorized: Token is expired)"},
		{"409 several scopes", f("GET", "/projects/*/variables/*", 409, body409Multiple), []string{"status", "--project-id", "42"},
			exitConflict, "GitLab holds several variables with this key in different environment scopes (409)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t)
			tg.needFake(t)
			tg.fake.AddFault(tc.fault)
			res := tg.run(t, tg.seed.MaintainerToken, nil, tc.args...)
			// The fault must have fired, or the sentence below says nothing about it.
			fired := false
			for _, r := range tg.fake.Requests() {
				fired = fired || (r.Method == tc.fault.Method && r.Status == tc.fault.Status)
			}
			assert.Assert(t, fired, "the injected %d on %s %s was never answered", tc.fault.Status, tc.fault.Method, tc.fault.Path)
			res.Assert(t, icmd.Expected{ExitCode: tc.code, Err: tc.want})
			last := strings.TrimPrefix(lastLine(res.Stderr()), "runner-bootstrap: ")
			assert.Check(t, is.Contains(last, tc.want))
			assert.Check(t, !strings.Contains(last, ". "), "more than one sentence: %q", last)
		})
	}
}

// TestRefusedResetLeavesNoStaleMark: when GitLab refuses the token reset with a definite answer
// (403, 422), the token was not reset and is still the one the runner's managers use. The
// variable must not stay marked rotation_pending: status would then report a stale token
// (exit 10), and the next create would reset a token that is in use.
func TestRefusedResetLeavesNoStaleMark(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{{"403", 403, body403}, {"422 orphaned", 422, body422Orphaned}} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t)
			tg.needFake(t)
			tok := tg.seed.MaintainerToken
			created := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42"))
			runner, _ := tg.fake.Runner(created.RunnerID)
			tg.fake.AddFault(f("POST", "/runners/*/reset_authentication_token", tc.status, tc.body))
			tg.run(t, tok, nil, "rotate", "--project-id", "42").Assert(t, icmd.Expected{ExitCode: map[int]int{403: exitAuth, 422: exitConflict}[tc.status]})
			tg.fake.ClearFaults()

			v, _ := tg.fake.Variable("project", 42, "RUNNER_TOKEN", "*")
			assert.Check(t, !strings.Contains(v.Description, "rotation_pending"), "description: %q", v.Description)
			tg.fake.ContactRunner(created.RunnerID, "s_0123456789ab")
			tg.run(t, tok, nil, "status", "--project-id", "42").Assert(t, icmd.Expected{ExitCode: 0, Out: "health: healthy"})
			tg.run(t, tok, nil, "create", "--project-id", "42").Assert(t, icmd.Success)
			after, _ := tg.fake.Runner(created.RunnerID)
			assert.Check(t, after.Token == runner.Token, "create reset a token that was never rotated")
		})
	}
}

// TestStoreNeverOverwritesAForeignVariable: someone else creates the variable between create's
// read (404) and its write. GitLab answers the write with 400 "has already been taken"; the
// tool must not then overwrite a variable it does not manage (its fallback is meant for a
// concurrent runner-bootstrap), and must delete the runner it created.
func TestStoreNeverOverwritesAForeignVariable(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tg.fake.AddFault(gitlabfake.Fault{Method: "POST", Path: "/projects/*/variables", Stall: 500 * time.Millisecond, Times: 1})
	res := icmd.StartCmd(icmd.Command(binary, "create", "--project-id", "42"), icmd.WithEnv(
		"PATH="+os.Getenv("PATH"), "HOME="+t.TempDir(), "CI_SERVER_URL="+tg.url, "GITLAB_TOKEN="+tg.seed.MaintainerToken))
	assert.NilError(t, res.Error)
	deadline := time.Now().Add(10 * time.Second)
	for len(tg.fake.Faults()) > 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	// The store is in flight: a colleague creates the same variable by hand.
	c, err := gitlab.New(gitlab.Config{BaseURL: tg.url, Token: tg.seed.OwnerToken, NoRetries: true})
	assert.NilError(t, err)
	theirs, desc := token.Secret("their-own-deploy-value"), "set by hand"
	assert.NilError(t, c.CreateVariable(t.Context(), gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: 42, Key: "RUNNER_TOKEN", Scope: "*"}, gitlab.VariableWrite{Value: &theirs, Description: &desc}))

	res = icmd.WaitOnCmd(time.Minute, res)
	tg.assertNoSecrets(t, res.Stdout()+res.Stderr())
	v, _ := tg.fake.Variable("project", 42, "RUNNER_TOKEN", "*")
	// (Compared, not printed: on failure the value is a runner token.)
	assert.Check(t, v.Value == "their-own-deploy-value", "the tool overwrote the value of a variable it does not manage (now masked=%t hidden=%t protected=%t)", v.Masked, v.Hidden, v.Protected)
	assert.Check(t, is.Equal(v.Description, "set by hand"))
	assert.Check(t, is.Equal(res.ExitCode, exitConflict), "%s%s", res.Stdout(), res.Stderr())
	assert.Check(t, is.Contains(res.Stderr(), "was not written by runner-bootstrap"))
	assert.Check(t, len(tg.fake.Runners()) == 0, "the runner whose token could not be stored is deleted")
}

// TestCreateDecidesFromAReadAfterAnUnansweredStore: GitLab stored the token but the answer was
// lost; create reads the variable, sees its runner recorded, and keeps the runner (deleting it
// would leave the variable holding a deleted runner's token). A variable gone right after the
// store is not a success: the runner is deleted again and the run fails.
func TestCreateDecidesFromAReadAfterAnUnansweredStore(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tg.fake.AddFault(gitlabfake.Fault{Method: "POST", Path: "/projects/*/variables", DropAfterAct: true, Times: 1})
	res := tg.run(t, tg.seed.MaintainerToken, nil, "create", "--project-id", "42", "-o", "json")
	res.Assert(t, icmd.Success)
	tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", decode(t, res).RunnerID)

	tg2 := newTarget(t)
	tg2.needFake(t)
	tg2.fake.AddFault(gitlabfake.Fault{Method: "GET", Path: "/projects/*/variables/*", Skip: 1, Status: 404, Body: `{"message":"404 Variable Not Found"}`, Times: 1})
	res = tg2.run(t, tg2.seed.MaintainerToken, nil, "create", "--project-id", "42")
	res.Assert(t, icmd.Expected{ExitCode: 1, Err: "was gone right after the token of runner"})
	assert.Check(t, is.Equal(len(tg2.fake.Runners()), 0), "a runner is left whose token is stored nowhere")
}
