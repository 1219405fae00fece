package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// TestRotateAllWithNothingToRotateFails: a schedule pointed at a scope with no managed
// variable must fail, saying so, rather than print an empty table and exit 0.
func TestRotateAllWithNothingToRotateFails(t *testing.T) {
	tg := newTarget(t)
	res := tg.run(t, tg.seed.OwnerToken, nil, "rotate", "--all", "--group-id", "platform", "--include-subgroups")
	res.Assert(t, icmd.Expected{ExitCode: exitNotFound, Err: "runner-bootstrap: no variable managed by runner-bootstrap in group platform and its "})
	assert.Check(t, is.Contains(res.Stderr(), "nothing to rotate; check the scope"))
	assert.Check(t, is.Equal(res.Stdout(), ""))
	res = tg.run(t, tg.seed.MaintainerToken, nil, "rotate", "--all", "--project-id", "platform/deploy", "-o", "json")
	res.Assert(t, icmd.Expected{ExitCode: exitNotFound, Out: `"error": "no variable managed by runner-bootstrap in project platform/deploy: nothing to rotate`})
}

// TestSecondCreateWithDefaultKeyWarns: create for another runner without --variable-key
// re-purposes the runner stored in RUNNER_TOKEN; it says so.
func TestSecondCreateWithDefaultKeyWarns(t *testing.T) {
	tg := newTarget(t)
	tok := tg.seed.MaintainerToken
	first := decode(t, tg.run(t, tok, nil, "create", "-o", "json", "--project-id", "platform/deploy", "--description", "deploy"))
	res := tg.run(t, tok, nil, "create", "--project-id", "platform/deploy", "--description", "build")
	res.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(res.Stderr(), "level=warning"))
	assert.Check(t, is.Contains(res.Stderr(), `had another description and was updated in place to \"build\": the variable is the runner's identity`))
	assert.Check(t, is.Contains(res.Stdout(), "updated runner "+itoa(first.RunnerID)))
	// With its own key there is no warning: that is a second runner.
	res = tg.run(t, tok, nil, "create", "--project-id", "platform/deploy", "--description", "test", "--variable-key", "TEST_RUNNER_TOKEN")
	res.Assert(t, icmd.Success)
	assert.Check(t, !strings.Contains(res.Stderr(), "identity"))
}

// TestStatusWords: an existing variable the tool did not write is "unmanaged"; a runner no
// manager has used yet is "never_contacted", a warning with GitLab's 7-day stale rule; and a
// run names a project by its path throughout.
func TestStatusWords(t *testing.T) {
	tg := newTarget(t)
	tok := tg.seed.MaintainerToken
	c, err := gitlab.New(gitlab.Config{BaseURL: tg.url, Token: tok, NoRetries: true})
	assert.NilError(t, err)
	val := token.Secret("some-other-value")
	assert.NilError(t, c.CreateVariable(t.Context(), gitlab.VarRef{Owner: spec.OwnerProject, OwnerID: 42, Key: "THEIRS", Scope: "*"}, gitlab.VariableWrite{Value: &val}))

	res := tg.run(t, tok, nil, "status", "--project-id", "platform/deploy", "--variable-key", "THEIRS", "-o", "json")
	res.Assert(t, icmd.Expected{ExitCode: 12})
	var rep statusReport
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &rep))
	assert.Check(t, is.Equal(rep.Health, "unmanaged"))

	tg.run(t, tok, nil, "create", "--project-id", "platform/deploy").Assert(t, icmd.Success)
	res = tg.run(t, tok, nil, "status", "--project-id", "platform/deploy")
	res.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(res.Stdout(), "health: never_contacted (warning): runner "))
	assert.Check(t, is.Contains(res.Stdout(), "has not contacted GitLab within 7 days of its creation"))
	assert.Check(t, !regexp.MustCompile(`project 42\b`).MatchString(res.Stdout()+res.Stderr()), "one name per object:\n%s", res.Stdout())

	// A rotation checks the stored token with POST /runners/verify, which GitLab counts as a
	// contact of the runner: the runner then looks contacted, but no host uses it yet, and
	// status still says so (the manager list is what proves a host).
	tg.run(t, tok, nil, "rotate", "--project-id", "platform/deploy").Assert(t, icmd.Success)
	res = tg.run(t, tok, nil, "status", "--project-id", "platform/deploy", "-o", "json")
	res.Assert(t, icmd.Success)
	var after statusReport
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout()), &after))
	assert.Check(t, is.Equal(after.Health, "never_contacted"), "after a rotate: %s", res.Stdout())
	assert.Check(t, is.Contains(res.Stdout(), "runner-bootstrap's own token checks count as a contact"))

	// Refusing to overwrite the unmanaged variable names it by path too.
	res = tg.run(t, tok, nil, "create", "--project-id", "platform/deploy", "--variable-key", "THEIRS")
	res.Assert(t, icmd.Expected{ExitCode: exitConflict, Err: "project platform/deploy variable THEIRS (scope *) exists but was not written by runner-bootstrap"})
}

// TestProgressInCI: in a GitLab CI job, rotate --all and prune write one line per item inside
// a collapsible log section; apply too.
func TestProgressInCI(t *testing.T) {
	tg := newTarget(t)
	tok := tg.seed.MaintainerToken
	for _, k := range []string{"A", "B"} {
		tg.run(t, tok, nil, "create", "--project-id", "platform/deploy", "--variable-key", k).Assert(t, icmd.Success)
	}
	ci := []string{"CI=true", "GITLAB_CI=true"}
	res := tg.run(t, tok, ci, "rotate", "--all", "--project-id", "platform/deploy")
	res.Assert(t, icmd.Success)
	section := regexp.MustCompile(`(?s)\x1b\[0Ksection_start:\d+:rotate_all\r\x1b\[0Krotating 2 managed variables in 1 owner, 4 at a time\n(.*)\x1b\[0Ksection_end:\d+:rotate_all\r\x1b\[0K\n`)
	m := section.FindStringSubmatch(res.Stderr())
	assert.Assert(t, m != nil, "no section in:\n%q", res.Stderr())
	assert.Check(t, is.Equal(strings.Count(m[1], "\n"), 2), "one line per variable:\n%s", m[1])
	assert.Check(t, is.Contains(m[1], `project platform/deploy variable A (scope *): rotated" progress=`))

	// Outside CI, without a terminal: the same lines, no section markers.
	res = tg.run(t, tok, nil, "rotate", "--all", "--project-id", "platform/deploy")
	res.Assert(t, icmd.Success)
	assert.Check(t, !strings.Contains(res.Stderr(), "section_start"))
	assert.Check(t, is.Contains(res.Stderr(), `variable B (scope *): rotated" progress=`))

	res = tg.run(t, tok, ci, "prune", "--project-id", "platform/deploy", "--dry-run")
	res.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(res.Stderr(), "section_start:"))
	assert.Check(t, is.Contains(res.Stderr(), "section_end:"))
}

// TestCreateDryRunIsApplysPlan: create --dry-run prints the plan apply --dry-run prints for the
// same runner, with each attribute as old → new (a flag left out resets its attribute), and
// writes nothing.
func TestCreateDryRunIsApplysPlan(t *testing.T) {
	tg := newTarget(t)
	tok := tg.seed.MaintainerToken
	tg.run(t, tok, nil, "create", "--project-id", "platform/deploy", "--description", "deploy", "--maximum-timeout", "3600").Assert(t, icmd.Success)
	writes := tg.writes()

	dry := tg.run(t, tok, nil, "create", "--project-id", "platform/deploy", "--description", "deploy", "--tag-list", "docker", "--dry-run")
	dry.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(dry.Stdout(), `changes: tag_list none → docker, maximum_timeout 3600 → none`))
	assert.Check(t, is.Contains(dry.Stdout(), "dry run: nothing was changed"))
	assert.Check(t, is.Equal(tg.writes(), writes), "a dry run writes nothing")

	manifest := filepath.Join(t.TempDir(), "fleet.yaml")
	assert.NilError(t, os.WriteFile(manifest, []byte("runners:\n  - project_id: platform/deploy\n    description: deploy\n    tag_list: [docker]\n"), 0o600))
	apply := tg.run(t, tok, nil, "apply", "--file", manifest, "--dry-run")
	apply.Assert(t, icmd.Success)
	cut := func(out string) string { // the plan without its ENTRY column
		var b strings.Builder
		for l := range strings.SplitSeq(out, "\n") {
			if f := strings.Fields(l); len(f) > 1 {
				b.WriteString(strings.Join(f[1:], " ") + "\n")
			}
		}
		return b.String()
	}
	assert.Check(t, is.Equal(cut(dry.Stdout()), cut(apply.Stdout())))

	// JSON: the plan's items carry the old and new values.
	js := tg.run(t, tok, nil, "create", "--project-id", "platform/deploy", "--description", "deploy", "--dry-run", "-o", "json")
	js.Assert(t, icmd.Success)
	assert.Check(t, is.Contains(js.Stdout(), `"attribute": "maximum_timeout",`))
	assert.Check(t, is.Contains(js.Stdout(), `"old": "3600",`))
	assert.Check(t, is.Equal(tg.writes(), writes))
}
