// Package migrate reads what teams used with legacy registration tokens, a gitlab-runner Helm
// chart values file or a gitlab-runner register command line, and turns it into the new
// runner registration workflow: the runner attributes to create in GitLab (a spec.Runner), the
// values file without its legacy keys, and the register command that uses --token.
//
// Nothing this package returns holds a token: values found under token keys and flags, and
// anything shaped like a GitLab token (glrt-, GR1348941…, glpat-, …), show only as their kind,
// such as [registration token]. The migrated values file references the token (runners.secret
// or the deploy job's --set runnerToken) instead of containing it.
package migrate
