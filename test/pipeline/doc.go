// Package pipeline tests the CI/CD components in templates/: their spec:inputs headers
// and rendered jobs against GitLab's CI JSON schema (third_party/gitlab-ci-schema), the
// generated inputs tables in the README, and real runs of the components under
// gitlab-ci-local against the fake GitLab of test/gitlabfake.
//
// Everything lives in _test.go files; this file only names the package.
package pipeline
