package e2e

import (
	"os"
	"testing"
)

// realTarget uses a real GitLab. GITLAB_TOKEN must be able to create project runners in
// GITLAB_E2E_PROJECT (a full path) and manage its CI/CD variables; the owner, admin and
// maintainer roles of the seed all map to that one token.
func realTarget(t *testing.T, url, tok string) *target {
	t.Helper()
	project := os.Getenv("GITLAB_E2E_PROJECT")
	if project == "" {
		t.Skip("GITLAB_URL and GITLAB_TOKEN are set but GITLAB_E2E_PROJECT (a project path to create runners in) is not")
	}
	tg := &target{url: url}
	tg.seed.URL = url
	tg.seed.AdminToken, tg.seed.OwnerToken, tg.seed.MaintainerToken = tok, tok, tok
	tg.secrets = []string{tok}
	realProject = project
	return tg
}

// realProject is the project path the real-GitLab run uses in place of platform/deploy.
var realProject = ""

// deployProject is the project the cases create runners in.
func deployProject() string {
	if realProject != "" {
		return realProject
	}
	return "platform/deploy"
}
