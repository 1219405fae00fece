package audit

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
)

// fixedReport is a report as Run builds it, with values another user wrote that try to
// inject Markdown and HTML.
func fixedReport() Report {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	v := "project platform/deploy variable RUNNER_TOKEN (scope *)"
	return Report{
		GitLab:      gitlab.Info{Version: "18.6.1", Enterprise: true},
		Scope:       Scope{Kind: "group", ID: 10, Path: "platform", IncludeSubgroups: true, Groups: 2, Projects: 2},
		GeneratedAt: now,
		WarnWithin:  "168h",
		Summary:     Summary{Critical: 1, High: 1, Low: 1},
		Findings: []Finding{
			{ID: IDTokenExpired, Severity: Critical, Object: v, Message: "The token of runner 1000 expired.", Fix: "runner-bootstrap rotate issues a new token.", RunnerID: 1000},
			{ID: IDUsesRegistrationToken, Severity: High, Object: "runner 1001 (legacy | <b>bold</b>)", Message: "Runner 1001 was registered with a registration token.", Fix: "runner-bootstrap migrate.", RunnerID: 1001},
			{ID: IDStaleRunner, Severity: Low, Object: "runner 1002", Message: "Runner 1002 has not been contacted for 10 days.", Fix: "runner-bootstrap prune --older-than 168h.", RunnerID: 1002},
		},
		Runners: []Runner{
			{ID: 1000, RunnerType: "project_type", Description: "deploy", Owner: "project platform/deploy", CreationMethod: "authenticated_user", CreatedBy: "root",
				Status: "online", ContactedAt: at(-time.Hour), Managers: []gitlab.Manager{{SystemID: "s_000000000001", Status: "online", Version: "18.6.0"}},
				Version: "18.6.0", Managed: true, Variable: &v, TokenExpiresAt: at(-24 * time.Hour)},
			{ID: 1001, RunnerType: "project_type", Description: "legacy | <b>bold</b> [x](http://evil.example) `code`\nsecond line", Owner: "project platform/deploy",
				CreationMethod: "registration_token", Status: "online", ContactedAt: at(-time.Minute), Managers: []gitlab.Manager{}},
			{ID: 1002, RunnerType: "group_type", Description: "old", Owner: "group platform", CreationMethod: "unknown", Status: "stale", ContactedAt: at(-240 * time.Hour), Managers: []gitlab.Manager{}},
		},
		Notes: []string{"GitLab's GraphQL API did not answer."},
	}
}

func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	assert.NilError(t, WriteMarkdown(&b, fixedReport()))
	golden.Assert(t, b.String(), "report.md.golden")
	// Text another user wrote cannot open a link, an HTML tag or a new table row.
	assert.Check(t, !strings.Contains(b.String(), "<b>"))
	assert.Check(t, !strings.Contains(b.String(), "[x](http"))
	assert.Check(t, is.Equal(strings.Count(b.String(), "\n| 1001 |"), 1))
}

func TestHTMLEscapesAndPlots(t *testing.T) {
	var b bytes.Buffer
	assert.NilError(t, WriteHTML(&b, fixedReport()))
	page := b.String()
	assert.Check(t, !strings.Contains(page, "<b>bold"))
	assert.Check(t, is.Contains(page, "&lt;b&gt;bold"))
	assert.Check(t, !strings.Contains(page, "<script"))
	// One managed runner with an expiry: one point, drawn as expired (left of "now").
	assert.Check(t, is.Equal(strings.Count(page, "<circle "), 1))
	assert.Check(t, is.Contains(page, `<circle class="expired"`))
	for _, id := range []string{`id="runner-1000"`, `id="runner-1001"`, `id="runner-1002"`} {
		assert.Check(t, is.Contains(page, id))
	}
}

func TestOldestSupported(t *testing.T) {
	for server, want := range map[gitlab.Version]string{gitlab.V(18, 6, 1): "18.4.0", gitlab.V(18, 1, 0): "17.11.0", gitlab.V(18, 0, 0): "17.10.0", {}: ""} {
		assert.Check(t, is.Equal(oldestSupported(gitlab.Server{Version: server}), want), server.String())
	}
	assert.Check(t, compareVersions("15.11.0", "18.4.0") < 0)
	assert.Check(t, compareVersions("18.10.1", "18.4.0") > 0)
}
