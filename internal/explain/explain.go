// Package explain tells a user what a token or an error message they met means for runner
// registration, and what to do next. It is built for pasting: a token is recognised by its
// prefix and never repeated back; an error is recognised by the phrases GitLab and gitlab-runner
// use.
package explain

import (
	"strings"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// Explanation is what an input means and what to do about it. Its texts are fixed sentences:
// nothing from the input is ever repeated in them.
type Explanation struct {
	// Kind is a stable identifier, such as registration_token or registration_disallowed.
	Kind string `json:"kind"`
	// What says what the input is or what went wrong.
	What string `json:"what"`
	// Steps are what to do, in order.
	Steps []string `json:"steps"`
}

// Kinds of input Explain recognises.
const (
	KindRunnerToken             = "runner_authentication_token"
	KindRegisteredRunnerToken   = "runner_token_from_registration"
	KindRegistrationToken       = "registration_token"
	KindAccessToken             = "access_token"
	KindJobToken                = "job_token"
	KindDeployToken             = "deploy_token"
	KindTriggerToken            = "trigger_token"
	KindOAuthSecret             = "oauth_application_secret"
	KindOtherToken              = "other_gitlab_token"
	KindRegistrationDisallowed  = "registration_disallowed"
	KindRegistrationRejected    = "registration_token_rejected"
	KindReservedConfiguration   = "reserved_configuration"
	KindRunnerTokenRejected     = "runner_token_rejected"
	KindInsufficientScope       = "insufficient_scope"
	KindInsufficientPermissions = "insufficient_permissions"
	KindUnauthorized            = "unauthorized"
	KindMaskedValueInvalid      = "masked_value_invalid"
	KindHiddenOnlyOnCreate      = "hidden_only_on_create"
	KindTrailingNewline         = "token_trailing_newline"
	KindUnknown                 = "unknown"
)

// Explain says what input is: a token (by its prefix; the token itself is never repeated) or
// the text of an error from GitLab or gitlab-runner. Anything else is KindUnknown, with steps
// that say what Explain can take.
func Explain(input string) Explanation {
	s := strings.TrimSpace(input)
	if s == "" {
		return unknown()
	}
	// A lone word is a token rather than an error, even if its random part spells "403".
	if !strings.ContainsAny(s, " \t\r\n") {
		if e, ok := explainToken(s); ok {
			return e
		}
	}
	if e, ok := explainError(strings.ToLower(s)); ok {
		return e
	}
	// A token inside a sentence: even a bare prefix says enough.
	if ms := token.Find(s, 0); len(ms) > 0 {
		if e, ok := explainToken(s[ms[0].Start:ms[0].End]); ok {
			return e
		}
	}
	return unknown()
}

const (
	stepUseAccessToken = "Set GITLAB_TOKEN to a personal, project or group access token (glpat-…) with the create_runner and api scopes, stored as a masked CI/CD variable."
	stepCreate         = "Create the runner with runner-bootstrap create (for example --runner-type project_type --project-id group/project --tag-list docker,linux): it stores the new runner authentication token in a masked and hidden CI/CD variable, RUNNER_TOKEN by default."
	stepMigrate        = "Migrate what you have with runner-bootstrap migrate --register-command \"gitlab-runner register …\" or --helm-values values.yaml: it creates the equivalent runner and prints the new register command or writes the values without legacy keys."
	stepRegisterToken  = "Register hosts with gitlab-runner register --non-interactive --url https://gitlab.example.com --token \"$RUNNER_TOKEN\" --executor … (no --tag-list, --locked or other server-side flags)."
)

// explainToken recognises a token by its prefix.
func explainToken(t string) (Explanation, bool) {
	sh, ok := token.Lookup(t)
	if !ok && strings.Contains(t, "CI_JOB_TOKEN") {
		sh, ok = token.Shape{Kind: token.JobToken, Explain: KindJobToken}, true
	}
	if !ok {
		return Explanation{}, false
	}
	switch sh.Kind {
	case token.RunnerRegistered:
		return Explanation{
			Kind: KindRegisteredRunnerToken,
			What: "A runner authentication token (glrtr-…) of a runner that was registered with a legacy registration token: the runner works, but it was made by the deprecated workflow, whose registration tokens are disabled by default since GitLab 17.0 and removed in 20.0.",
			Steps: []string{
				"Create its replacement with runner-bootstrap migrate (from the old register command or Helm values) or runner-bootstrap create, so the runner and its settings are defined in GitLab.",
				stepRegisterToken,
				"Then delete the old runner in GitLab (Settings > CI/CD > Runners) once no host uses its token.",
			},
		}, true
	case token.RunnerAuthentication:
		return Explanation{
			Kind: KindRunnerToken,
			What: "A runner authentication token (glrt-…): it identifies one runner created in GitLab (runner-bootstrap create, POST /user/runners or the UI). Every host that registers with it becomes a runner manager of that runner, told apart by its system ID. It can expire, and gitlab-runner rotates it by itself, writing the new token only to its own config.toml.",
			Steps: []string{
				stepRegisterToken,
				"Keep it in one place: runner-bootstrap create stores it in a masked and hidden CI/CD variable (RUNNER_TOKEN by default) that deploy jobs read.",
				"Rotate it with runner-bootstrap rotate (with --if-expiring-within 72h in a scheduled pipeline); the old token stops working, so redeploy every manager that uses it.",
				"Do not use it as GITLAB_TOKEN: the API refuses it. " + stepUseAccessToken,
				"If it was exposed, rotate it now with runner-bootstrap rotate.",
			},
		}, true
	case token.Registration:
		return Explanation{
			Kind: KindRegistrationToken,
			What: "A legacy runner registration token (GR1348941…): whoever has it can create runners in its project, group or instance. It is deprecated since GitLab 15.6, disabled by default since 17.0 (registration then fails with 410 Gone - runner registration disallowed) and removed in 20.0.",
			Steps: []string{
				stepCreate,
				stepMigrate,
				stepRegisterToken,
				"Once nothing uses it, reset the registration token and turn registration tokens off in the project's, group's or instance's runner settings.",
			},
		}, true
	case token.AccessToken:
		return Explanation{
			Kind: KindAccessToken,
			What: "A personal, project or group access token (glpat-…): this is what GITLAB_TOKEN should hold. runner-bootstrap calls the GitLab API with it to create runners and store their tokens.",
			Steps: []string{
				"Give it the create_runner scope (to create runners) and the api scope (to manage runners and CI/CD variables).",
				"Its user needs the Maintainer role for project runners, the Owner role for group runners, or administrator access for instance runners.",
				"Pass it as the CI/CD variable GITLAB_TOKEN (masked, protected) or with --token-file, never as a command-line argument.",
				"It is not a runner token: gitlab-runner register --token needs the runner authentication token (glrt-…) that runner-bootstrap create stores.",
			},
		}, true
	case token.JobToken:
		return Explanation{
			Kind: KindJobToken,
			What: "A CI/CD job token (glcbt-… or $CI_JOB_TOKEN): it lives for one job and reaches only the API endpoints that allow job tokens. Creating runners and reading or writing CI/CD variables are not among them, so GitLab answers 401.",
			Steps: []string{
				stepUseAccessToken,
				"Keep the job token for what it is for, such as cloning other projects or pulling packages and images.",
			},
		}, true
	}
	what, ok := otherWhat[sh.Kind]
	if !ok {
		what = "A GitLab token of another kind (" + sh.Prefix + "…): it cannot call the runner or CI/CD variable API."
	}
	return otherToken(sh.Explain, what)
}

// otherWhat says what each of the tokens that cannot register runners is for.
var otherWhat = map[token.Kind]string{
	token.DeployToken:        "A deploy token (gldt-…): it reads or writes repositories, packages and container images, and cannot call the runner or CI/CD variable API.",
	token.TriggerToken:       "A pipeline trigger token (glptt-…): it can only start pipelines, not create runners or store variables.",
	token.OAuthSecret:        "An OAuth application secret (gloas-…): it identifies an OAuth application, not a user, and is not an API token by itself.",
	token.FeedToken:          "A feed token (glft-…): it only reads RSS and calendar feeds.",
	token.IncomingEmailToken: "An incoming email token (glimt-…): it only creates issues or merge requests by email.",
	token.AgentToken:         "A GitLab agent for Kubernetes token (glagent-…): it connects a cluster agent to GitLab.",
	token.SCIMToken:          "A SCIM token (glsoat-…): it provisions users from an identity provider.",
	token.FeatureFlagsToken:  "A feature flags client token (glffct-…): it reads feature flags for an application.",
	token.WorkspaceToken:     "A workspace token (glwt-…): it belongs to a GitLab remote development workspace.",
}

func otherToken(kind, what string) (Explanation, bool) {
	return Explanation{
		Kind: kind,
		What: what,
		Steps: []string{
			stepUseAccessToken,
			"Runners are registered with a runner authentication token (glrt-…), which runner-bootstrap create makes and stores.",
		},
	}, true
}

// explainError recognises an error message by the phrases GitLab and gitlab-runner use; l is
// the lower-cased input.
func explainError(l string) (Explanation, bool) {
	has := func(phrases ...string) bool {
		for _, p := range phrases {
			if strings.Contains(l, p) {
				return true
			}
		}
		return false
	}
	switch {
	case has("is reserved", "runner configuration other than"):
		return Explanation{
			Kind: KindReservedConfiguration,
			What: "gitlab-runner refused server-side settings next to a runner authentication token: with --token (or a glrt- token in --registration-token), --tag-list, --locked, --run-untagged, --access-level, --maximum-timeout, --paused and --maintenance-note belong to the runner in GitLab, not to the register command.",
			Steps: []string{
				"Drop those flags, and the RUNNER_TAG_LIST and REGISTER_* environment variables, from the register command: runner-bootstrap migrate --register-command prints the cleaned-up command.",
				"Set them on the runner instead: runner-bootstrap create --tag-list … --locked … (a re-run with other values updates the runner in place).",
				"With the Helm chart, remove runners.maximumTimeout and the other legacy keys from the values (the chart still passes maximumTimeout with a runner authentication token): runner-bootstrap migrate --helm-values does it.",
			},
		}, true
	case has("registration disallowed") || (has("410") && has("gone")):
		return Explanation{
			Kind: KindRegistrationDisallowed,
			What: "GitLab refused to register a runner with a registration token: registration tokens are disabled on this GitLab (the default since 17.0), so gitlab-runner register --registration-token and the Helm chart's runnerRegistrationToken no longer create runners.",
			Steps: []string{
				stepCreate,
				stepMigrate,
				stepRegisterToken,
				"Only as a stopgap, an administrator (or on GitLab.com the top-level group's owner) can allow registration tokens again; they are removed in GitLab 20.0.",
			},
		}, true
	case has("check registration token"):
		return Explanation{
			Kind:  KindRegistrationRejected,
			What:  "GitLab did not accept the registration token: it was reset, belongs to another project or group, or registration tokens are turned off there.",
			Steps: []string{stepCreate, stepMigrate, stepRegisterToken},
		}, true
	case has("insufficient_scope", "insufficient scope"):
		return Explanation{
			Kind: KindInsufficientScope,
			What: "The access token lacks a scope this request needs (403 insufficient_scope).",
			Steps: []string{
				"Give the token in GITLAB_TOKEN the create_runner scope (to create runners) and the api scope (to manage runners and CI/CD variables); read_api is not enough.",
				"Scopes cannot be added to an existing token: create a new one and update the GITLAB_TOKEN variable.",
			},
		}, true
	case has("only new variables can be set as masked and hidden", "visibility setting cannot be changed"):
		return Explanation{
			Kind: KindHiddenOnlyOnCreate,
			What: "GitLab cannot change whether an existing CI/CD variable is hidden: masked and hidden is chosen when a variable is created (GitLab 17.4 and later) and never changed afterwards.",
			Steps: []string{
				"Keep the variable as it is with --no-variable-hidden (it stays masked), or",
				"delete the variable in Settings > CI/CD > Variables and run runner-bootstrap rotate, which stores a fresh token in a new hidden variable.",
			},
		}, true
	case has("invalid header field"):
		return Explanation{
			Kind: KindTrailingNewline,
			What: "A token has a newline or another control character in it (usually at its end), and Go's HTTP client refuses it as a header value: typically a token file written with echo, or a CI/CD variable saved with a trailing newline.",
			Steps: []string{
				"Write token files without the newline: printf '%s' \"$TOKEN\" > token instead of echo \"$TOKEN\" > token.",
				"Edit the CI/CD variable (Settings > CI/CD > Variables) and remove the trailing newline or spaces from its value.",
			},
		}, true
	case has("is invalid") && has("value", "mask"):
		return Explanation{
			Kind: KindMaskedValueInvalid,
			What: "GitLab refused the variable's value as one it cannot mask ({\"value\":[\"is invalid\"]}): a masked value must be one line of at least 8 characters from the Base64 alphabet plus @ : . ~, with no spaces.",
			Steps: []string{
				"A runner authentication token always qualifies: the usual culprit is a newline or space picked up from a file or an echo, so strip it.",
				"If the value is not a token, store it unmasked or change it to meet the rules.",
			},
		}, true
	case has("403") && has("insufficient permissions"):
		return Explanation{
			Kind: KindInsufficientPermissions,
			What: "GitLab refused the request because the access token's user lacks the role it needs (403 Forbidden - Insufficient permissions).",
			Steps: []string{
				"Project runners and project variables need the Maintainer role, group runners the Owner role, and instance runners an administrator.",
				"Check that --project-id, --group-id and the --variable-* flags name the project or group you meant.",
			},
		}, true
	case has("403", "forbidden", "verifying runner"):
		return Explanation{
			Kind: KindRunnerTokenRejected,
			What: "GitLab did not accept the runner authentication token (403 Forbidden from /runners/verify): it is wrong, expired, was rotated (gitlab-runner rotates it itself and keeps the new one only in its config.toml), or its runner was deleted.",
			Steps: []string{
				"Look at the runner and its token with runner-bootstrap status; it exits non-zero when the runner or the variable is missing or the token expires soon.",
				"Get a fresh token with runner-bootstrap rotate (it works even when the stored token is already stale) and redeploy the runner managers with it.",
				"If the runner was deleted, runner-bootstrap create makes a new one and updates the variable.",
			},
		}, true
	case has("401", "unauthorized", "invalid_token", "token is expired", "token was revoked"):
		return Explanation{
			Kind: KindUnauthorized,
			What: "GitLab did not accept the access token (401 Unauthorized): it is wrong, expired or revoked, or it is not an access token (runner, registration and job tokens are refused).",
			Steps: []string{
				stepUseAccessToken,
				"If it expired or was revoked, create a new one and update the GITLAB_TOKEN variable.",
			},
		}, true
	}
	return Explanation{}, false
}

func unknown() Explanation {
	return Explanation{
		Kind: KindUnknown,
		What: "runner-bootstrap does not recognise this input. explain takes a token (only its kind is shown, never the token) or the text of an error message from GitLab or gitlab-runner.",
		Steps: []string{
			"Paste the whole error line, such as 410 Gone - runner registration disallowed, or a token: its prefix (glrt-, GR1348941, glpat-, glcbt-) tells its kind.",
			"Registration tokens from before GitLab 15.6 and runner tokens from before 16.0 have no prefix, so they cannot be told from other text: check where the value came from.",
		},
	}
}
