package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

// versionCase is one GitLab release the tool must work on (or refuse on) per the version matrix.
type versionCase struct {
	version, tier string
	refused       bool // the description record would be dropped: refused before any write
	hidden        bool // masked_and_hidden is honoured (16.11+)
	managers      bool // GET /runners/:id/managers exists (17.1+)
}

var versionCases = []versionCase{
	{version: "16.1.0-ee", refused: true},
	{version: "16.5.0"},
	{version: "16.11.0-ee", hidden: true},
	{version: "17.3.0", hidden: true, managers: true},
	{version: "17.4.0-ee", hidden: true, managers: true},
	{version: "18.10.0-ee", tier: gitlabfake.TierPremium, hidden: true, managers: true},
	{version: "18.10.0", hidden: true, managers: true},
	{version: gitlabfake.NewestVersion + "-ee", hidden: true, managers: true},
}

// TestVersionMatrix runs create, re-run, drift, rotate, status, check, apply and delete on each
// release, in parallel, and proves from every write the fake received that no variable ever
// held a runner token unmasked, not even for a moment.
func TestVersionMatrix(t *testing.T) {
	for _, vc := range versionCases {
		t.Run(vc.version+"-"+vc.tier, func(t *testing.T) {
			t.Parallel()
			fake, seed := gitlabfake.NewTest(t, gitlabfake.GitLab(vc.version, vc.tier))
			tg := &target{url: seed.URL, fake: fake, seed: seed}
			tg.secrets = append(tg.secrets, seed.AdminToken, seed.OwnerToken, seed.MaintainerToken)
			tok := seed.MaintainerToken
			defer assertNeverUnmasked(t, fake)

			chk := tg.run(t, tok, nil, "check", "-o", "json", "--project-id", "42")
			var rep struct {
				Gitlab struct{ Version string } `json:"gitlab"`
				Steps  []struct {
					Name string `json:"name"`
					OK   bool   `json:"ok"`
				} `json:"steps"`
			}
			assert.NilError(t, json.Unmarshal([]byte(chk.Stdout()), &rep), chk.Stdout())
			assert.Check(t, strings.HasPrefix(vc.version, rep.Gitlab.Version))

			if vc.refused {
				chk.Assert(t, icmd.Expected{ExitCode: 2})
				before := tg.writes()
				tg.run(t, tok, nil, "create", "--project-id", "42").Assert(t, icmd.Expected{ExitCode: 2, Err: "needs GitLab 16.2"})
				assert.Check(t, is.Equal(tg.writes(), before), "a refused create wrote nothing")
				return
			}
			chk.Assert(t, icmd.Success)

			res := tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42", "--description", "matrix")
			res.Assert(t, icmd.Success)
			created := decode(t, res)
			assert.Check(t, is.Equal(created.Action, "created"))
			tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", created.RunnerID)
			v, _ := fake.Variable("project", 42, "RUNNER_TOKEN", "*")
			assert.Check(t, v.Masked && v.Protected)
			assert.Check(t, is.Equal(v.Hidden, vc.hidden))
			if !vc.hidden {
				assert.Check(t, is.Contains(strings.Join(created.Notes, " "), "cannot hide"))
			}

			before := tg.writes()
			again := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42", "--description", "matrix"))
			assert.Check(t, is.Equal(again.Action, "unchanged"))
			assert.Check(t, is.Equal(tg.writes(), before), "a re-run writes nothing")

			drift := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "42", "--description", "matrix", "--tag-list", "x"))
			assert.Check(t, is.Equal(drift.Action, "updated"))

			rot := decode(t, tg.run(t, tok, nil, "rotate", "-o", "json", "--project-id", "42"))
			assert.Check(t, is.Equal(rot.Action, "rotated"))
			tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", created.RunnerID)

			st := tg.run(t, tok, nil, "status", "--project-id", "42")
			st.Assert(t, icmd.Success)
			if !vc.managers {
				assert.Check(t, is.Contains(st.Stdout(), "managers: unknown on this version"))
			}

			fleet := writeFleet(t, "runners:\n  - project_id: 42\n    description: fleet\n    tag_list: [a]\n    variable: {key: FLEET_TOKEN}\n")
			ap := tg.run(t, tok, nil, "apply", "-o", "json", "--file", fleet)
			ap.Assert(t, icmd.Success)
			var apRep struct {
				Gitlab *struct {
					Version    string `json:"version"`
					Enterprise bool   `json:"enterprise"`
				} `json:"gitlab"`
				Notes []string `json:"notes"`
			}
			assert.NilError(t, json.Unmarshal([]byte(ap.Stdout()), &apRep), ap.Stdout())
			assert.Assert(t, apRep.Gitlab != nil, ap.Stdout())
			assert.Check(t, strings.HasPrefix(vc.version, apRep.Gitlab.Version))
			assert.Check(t, is.Equal(apRep.Gitlab.Enterprise, strings.HasSuffix(vc.version, "-ee")))
			assert.Check(t, is.Equal(strings.Contains(strings.Join(apRep.Notes, " "), "cannot hide"), !vc.hidden), "apply notes: %v", apRep.Notes)
			fv, ok := fake.Variable("project", 42, "FLEET_TOKEN", "*")
			assert.Check(t, ok && fv.Masked)

			tg.run(t, tok, nil, "delete", "--project-id", "42").Assert(t, icmd.Expected{Out: "deleted runner"})
			_, ok = fake.Variable("project", 42, "RUNNER_TOKEN", "*")
			assert.Check(t, !ok)
		})
	}
}

// assertNeverUnmasked checks every state any variable was written in.
func assertNeverUnmasked(t *testing.T, fake *gitlabfake.Server) {
	t.Helper()
	n := 0
	for _, w := range fake.VariableWrites() {
		if strings.HasPrefix(w.Value, "glrt-") {
			n++
			assert.Check(t, w.Masked, "%s variable %s was written unmasked with a runner token", w.Owner, w.Key)
		}
	}
	t.Logf("%d writes of a runner token checked", n)
}
