package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

type checkStep struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
}

type checkJSON struct {
	Gitlab *struct {
		Version    string `json:"version"`
		Enterprise bool   `json:"enterprise"`
	} `json:"gitlab"`
	Token *struct {
		Kind      string           `json:"kind"`
		Scopes    []string         `json:"scopes"`
		ExpiresAt *json.RawMessage `json:"expires_at"`
	} `json:"token"`
	Steps []checkStep `json:"steps"`
}

// runCheck runs check with the JSON output, proves it wrote nothing (every request the fake
// saw was a GET and the write count did not move) and returns the decoded report.
func (tg *target) runCheck(t *testing.T, tok string, wantExit int, args ...string) (checkJSON, map[string]checkStep) {
	t.Helper()
	tg.fake.ResetRequests()
	before := tg.writes()
	res := tg.run(t, tok, nil, append([]string{"check", "-o", "json"}, args...)...)
	res.Assert(t, icmd.Expected{ExitCode: wantExit})
	assert.Check(t, is.Equal(tg.writes(), before), "check wrote nothing")
	reqs := tg.fake.Requests()
	assert.Check(t, len(reqs) > 0)
	for _, r := range reqs {
		assert.Check(t, is.Equal(r.Method, http.MethodGet), "check only reads: %s %s", r.Method, r.Path)
	}
	var raw map[string]json.RawMessage
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &raw), res.Stdout())
	for _, k := range []string{"gitlab", "token", "steps"} {
		_, ok := raw[k]
		assert.Check(t, ok, "JSON has %q: %s", k, res.Stdout())
	}
	var rep checkJSON
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &rep))
	assert.Assert(t, rep.Gitlab != nil && rep.Token != nil, res.Stdout())
	var tokRaw map[string]json.RawMessage
	assert.NilError(t, json.Unmarshal(raw["token"], &tokRaw))
	for _, k := range []string{"kind", "scopes", "expires_at"} {
		_, ok := tokRaw[k]
		assert.Check(t, ok, "token has %q: %s", k, raw["token"])
	}
	steps := map[string]checkStep{}
	exit := 0
	for _, st := range rep.Steps {
		assert.Check(t, st.Name != "" && st.Reason != "", "every step has a name and a reason: %+v", st)
		steps[st.Name] = st
		if !st.OK {
			exit = 2
		}
	}
	assert.Check(t, is.Equal(exit, wantExit), "exit 2 exactly when a step fails: %+v", rep.Steps)
	return rep, steps
}

// TestCheckVersionMatrix runs check on every release of the version matrix: what it reports
// about the server, the token and each step, and that it never writes.
func TestCheckVersionMatrix(t *testing.T) {
	for _, vc := range versionCases {
		t.Run(vc.version+"-"+vc.tier, func(t *testing.T) {
			t.Parallel()
			fake, seed := gitlabfake.NewTest(t, gitlabfake.GitLab(vc.version, vc.tier))
			tg := &target{url: seed.URL, fake: fake, seed: seed}
			tg.secrets = append(tg.secrets, seed.AdminToken, seed.OwnerToken, seed.MaintainerToken, seed.DeveloperToken, seed.ReadAPIToken)
			ee := strings.HasSuffix(vc.version, "-ee")
			want := 0
			if vc.refused {
				want = 2
			}

			rep, steps := tg.runCheck(t, seed.MaintainerToken, want, "--project-id", "42", "--description", "matrix")
			assert.Check(t, strings.HasPrefix(vc.version, rep.Gitlab.Version), rep.Gitlab.Version)
			assert.Check(t, is.Equal(rep.Gitlab.Enterprise, ee))
			assert.Check(t, is.Equal(rep.Token.Kind, "personal"))
			assert.Check(t, is.DeepEqual(rep.Token.Scopes, []string{"api"}))
			assert.Check(t, rep.Token.ExpiresAt == nil || string(*rep.Token.ExpiresAt) == "null", "the seed token never expires")
			var names []string
			for _, st := range rep.Steps {
				names = append(names, st.Name)
			}
			assert.Check(t, is.DeepEqual(names, []string{"create_runner", "store_token", "rotate_token", "delete", "list_managers"}))
			for _, n := range []string{"create_runner", "rotate_token", "delete", "list_managers"} {
				assert.Check(t, steps[n].OK, "%s: %s", n, steps[n].Reason)
			}

			store := steps["store_token"]
			assert.Check(t, is.Equal(store.OK, !vc.refused), store.Reason)
			switch {
			case vc.refused:
				assert.Check(t, is.Contains(store.Reason, "16.2"))
			case !vc.hidden:
				assert.Check(t, is.Contains(store.Reason, "cannot hide CI/CD variables"))
			case strings.HasPrefix(vc.version, "16.11") || strings.HasPrefix(vc.version, "17.3"):
				assert.Check(t, is.Contains(store.Reason, "still shows its value"))
			default:
				assert.Check(t, is.Equal(store.Reason, "will work"), "hidden as asked")
			}
			mgr := steps["list_managers"].Reason
			assert.Check(t, is.Equal(strings.Contains(mgr, "unknown on this version"), !vc.managers), mgr)

			// Token expiry at creation: only EE from 18.10 keeps it (the tier is unreadable
			// without admin rights, so EE Free is not known beforehand).
			expiryOK := ee && !strings.HasPrefix(vc.version, "16.") && !strings.HasPrefix(vc.version, "17.")
			expWant := want
			if !expiryOK {
				expWant = 2
			}
			_, esteps := tg.runCheck(t, seed.MaintainerToken, expWant, "--project-id", "42", "--description", "matrix",
				"--token-expires-in", "1h", "--token-rotation-deadline-in", "10m")
			exp, ok := esteps["token_expiry"]
			assert.Check(t, ok, "the token_expiry step is there when an expiry is asked")
			assert.Check(t, is.Equal(exp.OK, expiryOK), exp.Reason)
			if !expiryOK {
				assert.Check(t, is.Contains(exp.Reason, "18.10"))
			}

			// A token lacking the api scope: nothing but reading works.
			_, rsteps := tg.runCheck(t, seed.ReadAPIToken, 2, "--project-id", "42")
			for _, n := range []string{"create_runner", "store_token", "rotate_token", "delete"} {
				assert.Check(t, !rsteps[n].OK, "%s with read_api: %s", n, rsteps[n].Reason)
			}
			assert.Check(t, is.Contains(rsteps["store_token"].Reason, "api scope"))

			// A Developer may neither create the project's runner nor write its variables.
			_, dsteps := tg.runCheck(t, seed.DeveloperToken, 2, "--project-id", "42")
			for _, n := range []string{"create_runner", "store_token", "rotate_token", "delete"} {
				assert.Check(t, !dsteps[n].OK, "%s as Developer: %s", n, dsteps[n].Reason)
			}
			assert.Check(t, is.Contains(dsteps["create_runner"].Reason, "Maintainer role"))
			assert.Check(t, is.Contains(dsteps["create_runner"].Reason, "Developer"))
			assert.Check(t, dsteps["list_managers"].OK)
		})
	}
}
