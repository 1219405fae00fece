package pipeline

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/fs"
	"gotest.tools/v3/icmd"
)

const releaseNotesScript = repoRoot + "/scripts/release-notes.sh"

// testDigest is a well-formed image digest for the notes.
var testDigest = "sha256:" + strings.Repeat("0123456789abcdef", 4)

// projectJobs reads the jobs of the project's own .gitlab-ci.yml that the release needs
// (the file's !reference tags elsewhere are left alone).
func projectJobs(t *testing.T, names ...string) (vars map[string]string, jobs map[string]*yaml.Node) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".gitlab-ci.yml"))
	assert.NilError(t, err)
	var doc yaml.Node
	assert.NilError(t, yaml.Unmarshal(raw, &doc))
	root := doc.Content[0]
	assert.NilError(t, mappingValue(root, "variables").Decode(&vars))
	jobs = map[string]*yaml.Node{}
	for _, name := range names {
		job := mappingValue(root, name)
		assert.Assert(t, job != nil, ".gitlab-ci.yml has no job %s", name)
		jobs[name] = job
	}
	return vars, jobs
}

// tagRule returns the regular expression of a job's only rule, `if: $CI_COMMIT_TAG =~ /re/`.
func tagRule(t *testing.T, job *yaml.Node) *regexp.Regexp {
	t.Helper()
	var rules []map[string]any
	assert.NilError(t, mappingValue(job, "rules").Decode(&rules))
	assert.Assert(t, is.Len(rules, 1), "one rule: on release tags only")
	m := regexp.MustCompile(`^\$CI_COMMIT_TAG =~ /(.*)/$`).FindStringSubmatch(fmt.Sprint(rules[0]["if"]))
	assert.Assert(t, m != nil, "the rule must match CI_COMMIT_TAG against a regular expression: %v", rules[0])
	assert.Check(t, is.Len(rules[0], 1), "the rule must only say if: %v", rules[0])
	// GitLab evaluates rules regular expressions with RE2, as Go does.
	return regexp.MustCompile(m[1])
}

// TestReleaseJobShape checks the release and image:promote jobs of the project's pipeline
// against GitLab's CI schema and against what the CI/CD Catalog needs.
func TestReleaseJobShape(t *testing.T) {
	ci, _ := loadSchemas(t)
	vars, jobs := projectJobs(t, "release", "image:promote", "release:check")
	for name, job := range jobs {
		doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: name}, job,
		}}}}
		assert.Check(t, ci.Validate(toJSONValue(t, doc)), "job %s", name)

		re := tagRule(t, job)
		for _, tag := range []string{"1.2.3", "0.1.0", "10.20.300"} {
			assert.Check(t, re.MatchString(tag), "%s must run on tag %s", name, tag)
		}
		for _, tag := range []string{"", "v1.2.3", "1.2", "1.2.3-rc.1", "1.2.3.4", "latest", "x1.2.3"} {
			assert.Check(t, !re.MatchString(tag), "%s must not run on tag %q", name, tag)
		}
	}

	var release struct {
		Image  string   `yaml:"image"`
		Script []string `yaml:"script"`
		Needs  []struct {
			Job       string `yaml:"job"`
			Artifacts bool   `yaml:"artifacts"`
		} `yaml:"needs"`
		Release struct {
			TagName     string `yaml:"tag_name"`
			Description string `yaml:"description"`
		} `yaml:"release"`
	}
	assert.NilError(t, jobs["release"].Decode(&release))
	image := os.Expand(release.Image, func(k string) string { return vars[k] })
	assert.Check(t, strings.HasPrefix(image, "registry.gitlab.com/gitlab-org/cli:"), "the release job runs on the glab image, got %q", image)
	assert.Check(t, is.Equal(release.Release.TagName, "$CI_COMMIT_TAG"))
	assert.Check(t, is.Equal(release.Release.Description, "./release-notes.md"), "the notes come from the file the script writes")
	assert.Check(t, is.Contains(release.Script, "sh scripts/release-notes.sh > release-notes.md"))
	assert.Check(t, is.DeepEqual(len(release.Needs), 1))
	if len(release.Needs) == 1 {
		assert.Check(t, is.Equal(release.Needs[0].Job, "image:promote"))
		assert.Check(t, release.Needs[0].Artifacts, "the release needs image:promote's dotenv report (IMAGE_DIGEST)")
	}

	var check struct {
		Stage  string   `yaml:"stage"`
		Script []string `yaml:"script"`
	}
	assert.NilError(t, jobs["release:check"].Decode(&check))
	assert.Check(t, is.Equal(check.Stage, "lint"), "the notes are checked before anything is built or promoted")
	assert.Check(t, is.Contains(check.Script, "sh scripts/release-notes.sh > /dev/null"))

	var promote struct {
		Script    []string `yaml:"script"`
		Artifacts struct {
			Reports struct {
				Dotenv string `yaml:"dotenv"`
			} `yaml:"reports"`
		} `yaml:"artifacts"`
	}
	assert.NilError(t, jobs["image:promote"].Decode(&promote))
	assert.Check(t, is.Equal(promote.Artifacts.Reports.Dotenv, "image.env"))
	assert.Check(t, is.Contains(strings.Join(promote.Script, "\n"), `echo "IMAGE_DIGEST=$digest" > image.env`))
}

const notesChangelog = `# Changelog

## [Unreleased]
- not yet

## [1.2.3] - 2026-12-03

### Fixed
- rotate-token no longer rotates in push pipelines.

## [1.2.2] - 2026-11-01
- older change
`

// shells are the POSIX shells to run the script with: sh, and busybox sh (as in the glab
// image, which is alpine) when installed.
func shells(t *testing.T) [][]string {
	t.Helper()
	out := [][]string{{"sh"}}
	if p, err := exec.LookPath("busybox"); err == nil {
		out = append(out, []string{p, "sh"})
	}
	return out
}

func runNotes(t *testing.T, shell []string, dir string, env ...string) *icmd.Result {
	t.Helper()
	script, err := filepath.Abs(releaseNotesScript)
	assert.NilError(t, err)
	cmd := icmd.Command(shell[0], append(shell[1:], script)...)
	return icmd.RunCmd(cmd, icmd.Dir(dir), icmd.WithEnv(append([]string{"PATH=" + os.Getenv("PATH")}, env...)...))
}

// TestReleaseNotes runs scripts/release-notes.sh as the release job does: the notes carry the
// tag's CHANGELOG section (and no other), an include snippet for that version naming every
// component, and the image with its digest; without one of them it stops with one sentence.
func TestReleaseNotes(t *testing.T) {
	dir := fs.NewDir(t, "release",
		fs.WithFile("CHANGELOG.md", notesChangelog),
		fs.WithDir("templates", fs.FromDir(filepath.Join(repoRoot, "templates"))),
		fs.WithDir("compat", fs.FromDir(filepath.Join(repoRoot, "compat"))),
	)
	ciEnv := []string{
		"CI_COMMIT_TAG=1.2.3", "CI_SERVER_FQDN=gitlab.example.com", "CI_PROJECT_PATH=platform/runner-bootstrap",
		"CI_REGISTRY_IMAGE=registry.example.com/platform/runner-bootstrap", "IMAGE_DIGEST=" + testDigest,
	}
	for _, shell := range shells(t) {
		t.Run(filepath.Base(shell[0]), func(t *testing.T) {
			res := runNotes(t, shell, dir.Path(), ciEnv...)
			res.Assert(t, icmd.Success)
			notes := res.Stdout()
			assert.Check(t, is.Contains(notes, "### Fixed\n- rotate-token no longer rotates in push pipelines.\n"))
			assert.Check(t, !strings.Contains(notes, "older change") && !strings.Contains(notes, "not yet"), "only the tag's section:\n%s", notes)
			assert.Check(t, is.Contains(notes, "  - component: gitlab.example.com/platform/runner-bootstrap/create-runner@1.2.3\n"))
			for _, name := range components {
				assert.Check(t, is.Contains(notes, name), "the notes name component %s", name)
			}
			assert.Check(t, is.Contains(notes, "`registry.example.com/platform/runner-bootstrap:1.2.3@"+testDigest+"`"))
			// GitLab before 18.10 includes the generated compat file at the tag, with the version.
			assert.Check(t, is.Contains(notes, "  - project: platform/runner-bootstrap  # or your mirror's path\n    ref: 1.2.3\n    file: /compat/create-runner.yml\n    inputs:\n      version: 1.2.3\n"), notes)
			assert.Check(t, !strings.HasPrefix(notes, "\n"), "no leading blank line")

			for _, tc := range []struct {
				name string
				env  []string
				want string
			}{
				{"v prefix", []string{"CI_COMMIT_TAG=v1.2.3"}, `version "v1.2.3" is not a bare semantic version`},
				{"no section", []string{"CI_COMMIT_TAG=1.2.4"}, `has no section "## [1.2.4]"`},
				{"unreleased only", []string{"CI_COMMIT_TAG=1.3.0"}, `has no section "## [1.3.0]"`},
				{"no digest", []string{"IMAGE_DIGEST="}, `IMAGE_DIGEST "" is not an image digest`},
				{"short digest", []string{"IMAGE_DIGEST=sha256:abc"}, `is not an image digest`},
				{"no compat file", []string{"COMPAT=missing"}, `missing/apply-fleet.yml is missing: regenerate compat/`},
			} {
				res := runNotes(t, shell, dir.Path(), append(append([]string{}, ciEnv...), tc.env...)...)
				assert.Check(t, is.Equal(res.ExitCode, 1), tc.name)
				assert.Check(t, is.Equal(res.Stdout(), ""), "%s: no notes at all", tc.name)
				assert.Check(t, is.Contains(res.Stderr(), tc.want), tc.name)
				assert.Check(t, is.Equal(strings.Count(strings.TrimSpace(res.Stderr()), "\n"), 0), "%s: one sentence: %s", tc.name, res.Stderr())
			}
		})
	}
}

// TestChangelogHeadings keeps CHANGELOG.md in the shape the script reads: Unreleased first,
// then "## [X.Y.Z] - YYYY-MM-DD" headings without a v, each version once.
func TestChangelogHeadings(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "CHANGELOG.md"))
	assert.NilError(t, err)
	heading := regexp.MustCompile(`^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$`)
	var headings []string
	seen := map[string]bool{}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if !strings.HasPrefix(line, "## ") {
			continue
		}
		headings = append(headings, line)
		if line == "## [Unreleased]" {
			assert.Check(t, is.Len(headings, 1), "## [Unreleased] comes first")
			continue
		}
		m := heading.FindStringSubmatch(line)
		if assert.Check(t, m != nil, "CHANGELOG.md: %q is not ## [X.Y.Z] - YYYY-MM-DD", line) {
			assert.Check(t, !seen[m[1]], "CHANGELOG.md: %s twice", m[1])
			seen[m[1]] = true
		}
	}
	assert.Check(t, len(headings) > 0 && headings[0] == "## [Unreleased]", "CHANGELOG.md starts with ## [Unreleased]")
}

// TestTagPipelineRunsRelease runs the project's own .gitlab-ci.yml under gitlab-ci-local:
// a release tag's pipeline has image:promote and release, a branch pipeline and a v-prefixed
// tag's do not, and the release job writes well-formed notes. (gitlab-ci-local sets no
// CI_COMMIT_TAG itself and ignores release:, so the tag is given as a variable and the test
// reads the notes the job prints; image:promote needs a registry, so its digest is given too.)
func TestTagPipelineRunsRelease(t *testing.T) {
	ciYAML, err := os.ReadFile(filepath.Join(repoRoot, ".gitlab-ci.yml"))
	assert.NilError(t, err)
	script, err := os.ReadFile(releaseNotesScript)
	assert.NilError(t, err)
	p := newProject(t, string(ciYAML),
		fs.WithFile("CHANGELOG.md", notesChangelog),
		fs.WithDir("scripts", fs.WithFile("release-notes.sh", string(script))),
	)
	tag := func(name string) []string {
		return []string{"--variable", "CI_COMMIT_TAG=" + name, "--ignore-predefined-vars", "CI_COMMIT_BRANCH"}
	}
	listed := func(res *icmd.Result, job string) bool {
		return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(job) + `\s`).MatchString(res.Stdout())
	}

	res := p.runLocal(t, append(tag("1.2.3"), "--list")...)
	res.Assert(t, icmd.Success)
	assert.Check(t, listed(res, "release") && listed(res, "image:promote") && listed(res, "release:check"), "a release tag's pipeline releases:\n%s", res.Stdout())
	assert.Check(t, listed(res, "component:rotate-token") && !regexp.MustCompile(`(?m)^component:rotate-token\s.*manual`).MatchString(res.Stdout()),
		"the self-test rotates in every pipeline:\n%s", res.Stdout())

	for name, args := range map[string][]string{"branch": nil, "v-prefixed tag": tag("v1.2.3")} {
		res := p.runLocal(t, append(args, "--list")...)
		res.Assert(t, icmd.Success)
		assert.Check(t, listed(res, "lint"), "%s: the pipeline lists its jobs:\n%s", name, res.Stdout())
		assert.Check(t, !listed(res, "release") && !listed(res, "image:promote") && !listed(res, "release:check"), "%s: no release:\n%s", name, res.Stdout())
	}

	// A tag whose CHANGELOG section is missing stops in the first stage.
	res = p.runLocal(t, append(tag("1.2.4"), "--job", "release:check")...)
	assert.Check(t, res.ExitCode != 0, "release:check must fail without a CHANGELOG section:\n%s", res.Combined())
	assert.Check(t, is.Contains(res.Combined(), `has no section "## [1.2.4]"`))
	res = p.runLocal(t, append(tag("1.2.3"), "--job", "release:check")...)
	res.Assert(t, icmd.Success)

	res = p.runLocal(t, append(tag("1.2.3"), "--variable", "IMAGE_DIGEST="+testDigest, "--job", "release")...)
	res.Assert(t, icmd.Success)
	out := res.Combined()
	assert.Check(t, regexp.MustCompile(`PASS\s+release`).MatchString(out), out)
	assert.Check(t, is.Contains(out, "rotate-token no longer rotates in push pipelines."))
	assert.Check(t, is.Contains(out, "- component: gitlab.example.com/platform/deploy/create-runner@1.2.3"))
	assert.Check(t, is.Contains(out, ":1.2.3@"+testDigest+"`"))
	// The shell executor runs the job in the project directory itself.
	notes, err := os.ReadFile(p.dir.Join("release-notes.md"))
	if assert.Check(t, err, "the job leaves release-notes.md for release:description") {
		assert.Check(t, is.Contains(string(notes), "## Job image"))
	}
}
