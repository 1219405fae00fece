package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

type auditReport struct {
	GitLab   map[string]any `json:"gitlab"`
	Scope    map[string]any `json:"scope"`
	Summary  map[string]int `json:"summary"`
	Findings []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Object   string `json:"object"`
		Message  string `json:"message"`
		Fix      string `json:"fix"`
		RunnerID int64  `json:"runner_id"`
	} `json:"findings"`
	Runners []struct {
		ID             int64            `json:"id"`
		RunnerType     string           `json:"runner_type"`
		CreationMethod string           `json:"creation_method"`
		Managers       []map[string]any `json:"managers"`
		Managed        bool             `json:"managed"`
		Variable       *string          `json:"variable"`
		TokenExpiresAt *string          `json:"token_expires_at"`
	} `json:"runners"`
	Notes []string `json:"notes"`
}

func decodeAudit(t *testing.T, r *icmd.Result) auditReport {
	t.Helper()
	var out auditReport
	assert.NilError(t, json.Unmarshal([]byte(r.Stdout()), &out), "stdout: %s\nstderr: %s", r.Stdout(), r.Stderr())
	return out
}

// runnerCall sends a runner-side request (token in the body) the way gitlab-runner does.
func runnerCall(t *testing.T, tg *target, path string, body map[string]any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	assert.NilError(t, err)
	resp, err := http.Post(tg.url+"/api/v4"+path, "application/json", bytes.NewReader(b))
	assert.NilError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func userCall(t *testing.T, tg *target, method, path, tok string, body any) int {
	t.Helper()
	b, err := json.Marshal(body)
	assert.NilError(t, err)
	req, err := http.NewRequest(method, tg.url+"/api/v4"+path, bytes.NewReader(b))
	assert.NilError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Private-Token", tok)
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// seededScope is group platform holding every finding kind; it returns the runner ids by role.
func seededScope(t *testing.T, tg *target) map[string]int64 {
	t.Helper()
	f, admin := tg.fake, tg.seed.AdminToken
	ids := map[string]int64{}
	create := func(name string, args ...string) {
		t.Helper()
		r := tg.run(t, admin, nil, append([]string{"create", "-o", "json"}, args...)...)
		r.Assert(t, icmd.Success)
		ids[name] = decode(t, r).RunnerID
	}
	f.SetRegistrationTokensAllowed(true)

	// Ten days ago.
	f.SetClock(func() time.Time { return time.Now().Add(-10 * 24 * time.Hour) })
	f.SetRunnerTokenExpiration(3 * 24 * time.Hour)
	create("expired", "--project-id", "platform/deploy", "--description", "expired", "--variable-key", "EXPIRED_TOKEN")
	f.SetRunnerTokenExpiration(0)
	create("never-contacted", "--project-id", "platform/runners/fleet", "--description", "never-contacted", "--variable-key", "IDLE_TOKEN")
	create("stale", "--runner-type", "group_type", "--group-id", "platform/runners", "--description", "stale", "--variable-key", "STALE_RUNNER_TOKEN")
	f.ContactRunner(ids["stale"], "s_stale0000001")

	// Now.
	f.SetClock(time.Now)
	f.ContactRunner(ids["expired"], "s_expired00001")
	// A rotation checks the stored token with POST /runners/verify, which GitLab counts as a
	// contact: the never-contacted runner now has a contacted_at, but still no host.
	tg.run(t, admin, nil, "rotate", "--project-id", "platform/runners/fleet", "--variable-key", "IDLE_TOKEN").Assert(t, icmd.Success)
	code, reg := runnerCall(t, tg, "/runners", map[string]any{"token": f.RegistrationToken("project", 42), "description": "legacy"})
	assert.Equal(t, code, http.StatusCreated)
	ids["legacy"] = int64(reg["id"].(float64))
	for _, sys := range []string{"s_legacy000001", "s_legacy000002"} {
		code, _ = runnerCall(t, tg, "/jobs/request", map[string]any{"token": reg["token"], "system_id": sys, "info": map[string]any{"version": "15.11.0"}})
		assert.Equal(t, code, http.StatusNoContent)
	}
	// A visible, unmasked variable holding a runner token.
	assert.Equal(t, userCall(t, tg, http.MethodPost, "/projects/42/variables", admin, map[string]any{"key": "LEGACY_TOKEN", "value": reg["token"]}), http.StatusCreated)

	f.SetRunnerTokenExpiration(5 * 24 * time.Hour)
	create("soon", "--project-id", "platform/deploy", "--description", "soon", "--variable-key", "SOON_TOKEN",
		"--no-variable-protected", "--no-variable-hidden")
	f.ContactRunner(ids["soon"], "s_soon00000001")
	create("rotated", "--project-id", "platform/deploy", "--description", "rotated", "--variable-key", "ROTATED_TOKEN")
	f.ContactRunner(ids["rotated"], "s_rotated00001")
	// gitlab-runner rotates its own token later in the token's life, so GitLab reports
	// another expiry than the one recorded.
	f.AdvanceClock(time.Hour)
	f.RotateRunnerTokenAsRunner(ids["rotated"])
	f.SetClock(time.Now)
	create("orphan", "--project-id", "platform/deploy", "--description", "orphan", "--variable-key", "ORPHAN_TOKEN")
	f.ContactRunner(ids["orphan"], "s_orphan000001")
	assert.Equal(t, userCall(t, tg, http.MethodDelete, "/projects/42/variables/ORPHAN_TOKEN", admin, nil), http.StatusNoContent)
	create("gone", "--project-id", "platform/deploy", "--description", "gone", "--variable-key", "GONE_TOKEN")
	f.DeleteRunnerDirect(ids["gone"])
	f.SetRunnerTokenExpiration(0)
	return ids
}

func TestAuditSeededGroup(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	ids := seededScope(t, tg)
	dir := t.TempDir()
	html, mdPath := filepath.Join(dir, "audit.html"), filepath.Join(dir, "audit.md")

	tg.fake.ResetRequests()
	writes := tg.writes()
	res := tg.run(t, tg.seed.AdminToken, nil, "audit", "-o", "json", "--group", "platform", "--include-subgroups", "--html", html, "--markdown", mdPath)
	res.Assert(t, icmd.Expected{ExitCode: 20})
	assert.Check(t, is.Contains(res.Stderr(), "at or above --fail-on high"))
	rep := decodeAudit(t, res)

	// Reads only: no write, and every request a GET but the GraphQL query.
	assert.Check(t, is.Equal(tg.writes(), writes))
	for _, r := range tg.fake.Requests() {
		assert.Check(t, r.Method == http.MethodGet || (r.Method == http.MethodPost && r.Path == "/api/graphql"), "audit sent %s %s", r.Method, r.Path)
	}

	got := map[string][]string{}
	for _, f := range rep.Findings {
		got[f.ID] = append(got[f.ID], f.Object)
		assert.Check(t, f.Message != "" && f.Fix != "", "finding %s on %s lacks a message or fix", f.ID, f.Object)
	}
	for id := range got {
		sort.Strings(got[id])
	}
	runner := func(name string) string { return fmt.Sprintf("runner %d (%s)", ids[name], name) }
	want := map[string][]string{
		"registration-tokens-enabled-instance": {"the instance"},
		"registration-tokens-enabled":          {"group platform", "group platform/runners", "project platform/deploy", "project platform/runners/fleet"},
		"runner-uses-registration-token":       {runner("legacy")},
		"shared-token":                         {runner("legacy")},
		"token-expired":                        {"project platform/deploy variable EXPIRED_TOKEN (scope *)"},
		"token-expires-soon":                   {"project platform/deploy variable SOON_TOKEN (scope *)"},
		"token-stale":                          {"project platform/deploy variable ROTATED_TOKEN (scope *)"},
		"variable-not-masked":                  {"project platform/deploy variable LEGACY_TOKEN (scope *)"},
		"variable-not-hidden":                  {"project platform/deploy variable SOON_TOKEN (scope *)"},
		"variable-not-protected":               {"project platform/deploy variable SOON_TOKEN (scope *)"},
		"never-contacted":                      {runner("never-contacted")},
		"stale-runner":                         {runner("stale")},
		"orphan-runner":                        {runner("orphan")},
		"runner-missing":                       {"project platform/deploy variable GONE_TOKEN (scope *)"},
		"runner-version-outdated":              {runner("legacy")},
	}
	assert.Check(t, is.DeepEqual(got, want))
	assert.Check(t, is.DeepEqual(rep.Summary, map[string]int{"critical": 3, "high": 8, "medium": 5, "low": 2}))
	assert.Check(t, is.Equal(rep.Scope["path"], "platform"))

	byID := map[int64]int{}
	for i, r := range rep.Runners {
		byID[r.ID] = i
	}
	legacy := rep.Runners[byID[ids["legacy"]]]
	assert.Check(t, is.Equal(legacy.CreationMethod, "registration_token"))
	assert.Check(t, is.Len(legacy.Managers, 2))
	assert.Check(t, !legacy.Managed)
	soon := rep.Runners[byID[ids["soon"]]]
	assert.Check(t, is.Equal(soon.CreationMethod, "authenticated_user"))
	assert.Check(t, soon.Managed && soon.Variable != nil && soon.TokenExpiresAt != nil)

	// --fail-on critical still fails (critical findings exist); on a scope with only lower
	// ones it passes: the subgroup holds one low (stale) and one medium (never-contacted).
	tg.run(t, tg.seed.AdminToken, nil, "audit", "--group", "platform", "--include-subgroups", "--fail-on", "critical").Assert(t, icmd.Expected{ExitCode: 20})
	sub := tg.run(t, tg.seed.AdminToken, nil, "audit", "--group", "platform/runners", "--include-subgroups", "--fail-on", "critical")
	sub.Assert(t, icmd.Expected{ExitCode: 0, Out: "stale-runner"})
	assert.Check(t, is.Contains(sub.Stdout(), "never-contacted"))

	reports := readAll(t, html) + readAll(t, mdPath)
	tg.assertNoSecrets(t, reports)
	md := readAll(t, mdPath)
	for id := range want {
		assert.Check(t, is.Contains(md, "`"+id+"`"))
	}
	checkHTML(t, readAll(t, html), rep)
	screenshot(t, html)
}

func TestAuditCleanScope(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	admin := tg.seed.AdminToken
	r := tg.run(t, admin, nil, "create", "-o", "json", "--project-id", "other/app", "--description", "healthy")
	r.Assert(t, icmd.Success)
	tg.fake.ContactRunner(decode(t, r).RunnerID, "s_healthy00001")

	res := tg.run(t, admin, nil, "audit", "-o", "json", "--group", "other", "--include-subgroups", "--fail-on", "low")
	res.Assert(t, icmd.Success)
	rep := decodeAudit(t, res)
	assert.Check(t, is.Len(rep.Findings, 0))
	assert.Check(t, is.Len(rep.Runners, 1))
	assert.Check(t, is.DeepEqual(rep.Summary, map[string]int{"critical": 0, "high": 0, "medium": 0, "low": 0}))

	// Without an administrator's token the instance setting is a note, not a silent pass.
	text := tg.run(t, tg.seed.OwnerToken, nil, "audit", "--project-id", "platform/deploy")
	text.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(text.Stdout(), "allow_runner_registration_token could not be read"))
}

func TestAuditBadInput(t *testing.T) {
	tg := newTarget(t)
	for _, args := range [][]string{
		{"audit"},
		{"audit", "--group", "platform", "--project-id", "42"},
		{"audit", "--project-id", "42", "--include-subgroups"},
		{"audit", "--group", "platform", "--fail-on", "urgent"},
		{"audit", "--group", "platform", "--warn-within", "-1h"},
	} {
		res := tg.run(t, tg.seed.AdminToken, nil, args...)
		res.Assert(t, icmd.Expected{ExitCode: 2})
		assert.Check(t, strings.Count(strings.TrimSpace(res.Stderr()), "\n") == 0, "want one sentence, got %q", res.Stderr())
	}
	assert.Check(t, is.Equal(tg.writes(), 0))
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	return string(b)
}

var externalRef = regexp.MustCompile(`(?i)<script|<link|<img|<iframe|<object|\bsrc\s*=|\bhref\s*=|url\(|@import|https?://`)

// checkHTML checks the page's structure: self-contained, every runner and finding present.
func checkHTML(t *testing.T, page string, rep auditReport) {
	t.Helper()
	assert.Check(t, strings.HasPrefix(page, "<!DOCTYPE html>"))
	assert.Check(t, !externalRef.MatchString(page), "the report references something outside itself: %s", externalRef.FindString(page))
	assert.Check(t, is.Contains(page, "<style>"))
	assert.Check(t, is.Contains(page, "<svg"))
	for _, r := range rep.Runners {
		assert.Check(t, is.Contains(page, fmt.Sprintf(`id="runner-%d"`, r.ID)))
	}
	for _, f := range rep.Findings {
		assert.Check(t, is.Contains(page, "<code>"+f.ID+"</code>"))
	}
	for _, sev := range []string{"critical", "high", "medium", "low"} {
		assert.Check(t, is.Contains(page, fmt.Sprintf(`<div class="card %s"><div class="n">%d</div>`, sev, rep.Summary[sev])))
	}
	// The timeline plots each managed runner with an expiry: one circle per point.
	assert.Check(t, strings.Count(page, "<circle ") >= 3)
	// The rotated runner's stored token is drawn as stale, not by its (new) expiry.
	assert.Check(t, is.Equal(strings.Count(page, `<circle class="stale"`), 1))
}

// TestAuditOlderGitLab: on 16.11 GraphQL has no creationMethod (the query leaves it out, so
// it still answers) and there is no REST managers route; managers still come from GraphQL.
func TestAuditOlderGitLab(t *testing.T) {
	fake, seed := gitlabfake.NewTest(t, gitlabfake.GitLab("16.11.0", ""))
	tg := &target{url: seed.URL, fake: fake, seed: seed, secrets: []string{seed.AdminToken, seed.OwnerToken}}
	fake.SetRegistrationTokensAllowed(true)
	code, reg := runnerCall(t, tg, "/runners", map[string]any{"token": fake.RegistrationToken("project", 42), "description": "legacy"})
	assert.Equal(t, code, http.StatusCreated)
	for _, sys := range []string{"s_old000000001", "s_old000000002"} {
		code, _ = runnerCall(t, tg, "/jobs/request", map[string]any{"token": reg["token"], "system_id": sys, "info": map[string]any{"version": "16.11.0"}})
		assert.Equal(t, code, http.StatusNoContent)
	}
	res := tg.run(t, seed.AdminToken, nil, "audit", "-o", "json", "--project-id", "platform/deploy")
	res.Assert(t, icmd.Expected{ExitCode: 20})
	rep := decodeAudit(t, res)
	assert.Check(t, is.Equal(rep.GitLab["version"], "16.11.0"))
	assert.Assert(t, is.Len(rep.Runners, 1))
	assert.Check(t, is.Equal(rep.Runners[0].CreationMethod, "unknown"))
	assert.Check(t, is.Len(rep.Runners[0].Managers, 2), "managers come from GraphQL where REST has no route")
	ids := map[string]bool{}
	for _, f := range rep.Findings {
		ids[f.ID] = true
	}
	assert.Check(t, ids["shared-token"] && ids["registration-tokens-enabled"] && !ids["runner-uses-registration-token"], "%v", ids)
	assert.Check(t, is.Contains(strings.Join(rep.Notes, " "), "cannot say how runners were created"))
	for _, r := range fake.Requests() {
		assert.Check(t, !strings.HasSuffix(r.Path, "/managers"), "audit asked the REST managers route, which 16.11 lacks")
	}
}

// TestAuditInstance: an administrator audits the instance (its setting, every runner, the
// instance variables); anyone else is refused with exit 3 before any report is written.
func TestAuditInstance(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	tg.fake.SetRegistrationTokensAllowed(true)
	r := tg.run(t, tg.seed.AdminToken, nil, "create", "-o", "json", "--runner-type", "instance_type", "--description", "shared")
	r.Assert(t, icmd.Success)
	id := decode(t, r).RunnerID
	res := tg.run(t, tg.seed.AdminToken, nil, "audit", "-o", "json", "--instance", "--fail-on", "critical")
	res.Assert(t, icmd.Success)
	rep := decodeAudit(t, res)
	assert.Check(t, is.Equal(rep.Scope["kind"], "instance"))
	assert.Assert(t, is.Len(rep.Runners, 1))
	assert.Check(t, is.Equal(rep.Runners[0].ID, id))
	assert.Check(t, rep.Runners[0].Managed && rep.Runners[0].Variable != nil)
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.ID)
	}
	// Instance variables can never be hidden, so only the instance setting is reported.
	assert.Check(t, is.DeepEqual(got, []string{"registration-tokens-enabled-instance"}))

	html := filepath.Join(t.TempDir(), "audit.html")
	denied := tg.run(t, tg.seed.OwnerToken, nil, "audit", "--instance", "--html", html)
	denied.Assert(t, icmd.Expected{ExitCode: 3})
	_, err := os.Stat(html)
	assert.Check(t, os.IsNotExist(err), "no report for a scope that could not be read")
}
