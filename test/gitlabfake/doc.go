// Package gitlabfake is an in-process fake of the parts of the GitLab REST API that
// runner-bootstrap uses: creating runners with POST /user/runners, the runner-token
// endpoints, runner listing/inspection/rotation and project, group and instance CI/CD
// variables.
//
// It follows ../shared/reference/gitlab-api.md to the status code and error body. Where
// that reference is unsure, the fake picks the stricter behaviour and says so in a
// comment marked "Stricter:".
//
// It emulates one GitLab release, edition and licence tier (GitLab option, SetGitLab, the
// binary's --gitlab-version and --tier; default NewestVersion EE Premium) as the version matrix
// ../shared/reference/gitlab-versions.md describes it: params a release does not declare are
// dropped silently, routes it lacks answer 404, and 16.11 to 17.3 store hidden variables but
// still return their values. GET /metadata, /version, /user, /personal_access_tokens/self and
// the members/all lookups are served for version detection and preflight checks.
// VariableWrites lists every state a variable was written in, to prove a token was never stored
// unmasked even for a moment.
//
// The fake serves under /api/v4/ and exposes control endpoints under /-/fake/ (no auth)
// for the standalone binary in cmd/gitlabfake. All state sits behind one mutex.
//
// Every project and group is private: a user sees one only as an admin or a member
// (directly, through an ancestor group, or, for groups, through a descendant group or
// project, as GitLab's GroupPolicy does).
//
// Tokens (access tokens and runner tokens) come from a seeded pseudo-random generator,
// so a fresh server produces the same sequence of tokens every run.
package gitlabfake
