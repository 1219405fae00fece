package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

// host is one machine of a fleet: it runs gitlab-runner from the config.toml a deploy job
// rendered, and polls GitLab with the token and system id found there.
type host struct {
	name, systemID, dir string
}

// deploy renders the host's config.toml from the variable, as the README's deploy job does.
func (h host) deploy(t *testing.T, tg *target, runnerID int64) {
	t.Helper()
	env := []string{"RUNNER_TOKEN=" + mustVar(t, tg).Value}
	tg.run(t, "", env, "render", "--format", "config-toml", "--name", h.name, "--runner-id", strconv.FormatInt(runnerID, 10),
		"--system-id", h.systemID, "--file", filepath.Join(h.dir, "config.toml")).Assert(t, icmd.Success)
}

// poll is what the host's gitlab-runner does: POST /jobs/request with what its files say.
func (h host) poll(t *testing.T, tg *target) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(h.dir, "config.toml"))
	assert.NilError(t, err)
	var cfg struct {
		Runners []struct {
			ID    int64  `toml:"id"`
			Token string `toml:"token"`
		} `toml:"runners"`
	}
	assert.NilError(t, toml.Unmarshal(raw, &cfg))
	sid, err := os.ReadFile(filepath.Join(h.dir, ".runner_system_id"))
	assert.NilError(t, err)
	return poll(t, tg, cfg.Runners[0].Token, strings.TrimSpace(string(sid)))
}

type adoptJSON struct {
	Action         string        `json:"action"`
	RunnerID       int64         `json:"runner_id"`
	VariableKey    string        `json:"variable_key"`
	Managers       []managerJSON `json:"managers"`
	TokenExpiresAt *string       `json:"token_expires_at"`
	DryRun         bool          `json:"dry_run"`
}

func decodeAdopt(t *testing.T, r *icmd.Result) adoptJSON {
	t.Helper()
	var out adoptJSON
	assert.NilError(t, json.Unmarshal([]byte(r.Stdout()), &out), "stdout: %s\nstderr: %s", r.Stdout(), r.Stderr())
	return out
}

// TestAdoptSharedTokenRotateRedeployWait is the story of the README's "Existing fleets": a
// runner made in the UI whose token three hosts share is adopted, the hosts are redeployed from
// the variable, a schedule rotates the token, the hosts are redeployed again, and status
// --wait-managers passes; before the redeploy it fails naming the hosts.
func TestAdoptSharedTokenRotateRedeployWait(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tok := tg.seed.MaintainerToken
	// Made by hand in the UI; the token pasted into three hosts' config.toml.
	code, body := runnerCallAuth(t, tg, tok, "/user/runners", map[string]any{"runner_type": "project_type", "project_id": 42, "description": "build fleet"})
	assert.Assert(t, code == http.StatusCreated, "%d %v", code, body)
	id := int64(body["id"].(float64))
	pasted := body["token"].(string)
	tg.secrets = append(tg.secrets, pasted)
	for _, h := range threeHosts {
		assert.Check(t, is.Equal(poll(t, tg, pasted, h), http.StatusNoContent))
	}

	dry := decodeAdopt(t, tg.run(t, tok, nil, "adopt", "-o", "json", "--runner-id", strconv.FormatInt(id, 10), "--dry-run"))
	assert.Check(t, is.Equal(dry.Action, "adopted"))
	assert.Check(t, dry.DryRun)
	assert.Check(t, is.Len(dry.Managers, 3))
	assert.Check(t, is.Equal(poll(t, tg, pasted, threeHosts[0]), http.StatusNoContent), "--dry-run reset the token")

	ad := tg.run(t, tok, nil, "adopt", "--runner-id", strconv.FormatInt(id, 10))
	ad.Assert(t, icmd.Expected{Out: "adopted project_type runner " + strconv.FormatInt(id, 10)})
	assert.Check(t, is.Contains(ad.Stdout(), "managers that used the old token (each works again once redeployed from $RUNNER_TOKEN): 3"))
	tg.assertNoSecrets(t, ad.Combined())
	tg.storedOK(t, "project", 42, "RUNNER_TOKEN", "*", id)
	assert.Check(t, is.Equal(poll(t, tg, pasted, threeHosts[0]), http.StatusForbidden), "the pasted token still works")
	again := decodeAdopt(t, tg.run(t, tok, nil, "adopt", "-o", "json", "--runner-id", strconv.FormatInt(id, 10)))
	assert.Check(t, is.Equal(again.Action, "unchanged"))

	// Redeploy the three hosts from the variable, each keeping the system id it had, so that
	// GitLab keeps one manager entry per host.
	var hosts []host
	for i, n := range []string{"build-01", "build-02", "build-03"} {
		h := host{name: n, systemID: threeHosts[i], dir: t.TempDir()}
		h.deploy(t, tg, id)
		assert.Check(t, is.Equal(h.poll(t, tg), http.StatusNoContent))
		hosts = append(hosts, h)
	}
	time.Sleep(1100 * time.Millisecond) // the record keeps whole seconds

	// The schedule rotates; before the redeploy, the wait fails naming the hosts.
	rot := tg.run(t, tok, []string{"CI_PIPELINE_SOURCE=schedule"}, "rotate", "--project-id", "42")
	rot.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(rot.Stdout(), "managers that used the old token in the last day"))
	for _, h := range hosts {
		assert.Check(t, is.Equal(h.poll(t, tg), http.StatusForbidden))
	}
	tg.run(t, tok, nil, "status", "--project-id", "42", "--wait-managers", "1s").Assert(t, icmd.Expected{ExitCode: 1, Err: "3 of 3 managers have not contacted GitLab since the rotation"})

	for _, h := range hosts {
		h.deploy(t, tg, id)
		assert.Check(t, is.Equal(h.poll(t, tg), http.StatusNoContent))
	}
	st := tg.run(t, tok, nil, "status", "--project-id", "42", "--wait-managers", "1m")
	st.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(st.Stdout(), "managers back since the rotation at"))
	assert.Check(t, is.Contains(st.Stdout(), "3 of 3"))
}

// runnerCallAuth is an API call with an access token, as a person's script makes it.
func runnerCallAuth(t *testing.T, tg *target, tok, path string, body map[string]any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	assert.NilError(t, err)
	req, err := http.NewRequest(http.MethodPost, tg.url+"/api/v4"+path, bytes.NewReader(b))
	assert.NilError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Private-Token", tok)
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
