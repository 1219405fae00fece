package migrate

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// setting is a gitlab-runner register option that maps to the runner in GitLab (or to its
// token or URL): what POST /user/runners now takes instead.
type setting int

const (
	setNone setting = iota
	setTagList
	setRunUntagged
	setLocked
	setAccessLevel
	setMaximumTimeout
	setPaused
	setMaintenanceNote
	setDescription
	setRegistrationToken
	setToken
	setURL
	setNonInteractive
	// settingHost is an environment variable gitlab-runner reads for a host-side option.
	settingHost
)

// registerFlags are gitlab-runner register's flags (commands/register.go and
// common/config.go RunnerCredentials/RunnerConfig struct tags) that runner-bootstrap handles.
// gitlab-runner's -n is --non-interactive; the description's alias is --name.
var registerFlags = map[string]setting{
	"tag-list":           setTagList,
	"run-untagged":       setRunUntagged,
	"locked":             setLocked,
	"access-level":       setAccessLevel,
	"maximum-timeout":    setMaximumTimeout,
	"paused":             setPaused,
	"maintenance-note":   setMaintenanceNote,
	"description":        setDescription,
	"name":               setDescription,
	"registration-token": setRegistrationToken,
	"r":                  setRegistrationToken,
	"token":              setToken,
	"t":                  setToken,
	"url":                setURL,
	"u":                  setURL,
	"non-interactive":    setNonInteractive,
	"n":                  setNonInteractive,
}

// registerEnv are the environment variables gitlab-runner register reads for the same settings.
var registerEnv = map[string]setting{
	"RUNNER_TAG_LIST":           setTagList,
	"REGISTER_RUN_UNTAGGED":     setRunUntagged,
	"REGISTER_LOCKED":           setLocked,
	"REGISTER_ACCESS_LEVEL":     setAccessLevel,
	"REGISTER_MAXIMUM_TIMEOUT":  setMaximumTimeout,
	"REGISTER_PAUSED":           setPaused,
	"REGISTER_MAINTENANCE_NOTE": setMaintenanceNote,
	"RUNNER_NAME":               setDescription,
	"REGISTRATION_TOKEN":        setRegistrationToken,
	"CI_SERVER_TOKEN":           setToken,
	"CI_SERVER_URL":             setURL,
	"REGISTER_NON_INTERACTIVE":  setNonInteractive,
}

func (s setting) boolean() bool {
	return s == setRunUntagged || s == setLocked || s == setPaused || s == setNonInteractive
}

// RegisterMigration is a legacy gitlab-runner register command line, read for a migration: the
// runner attributes it set (now given to GitLab when the runner is created) and the host-side
// options it keeps. It never holds a token: only where the old command took one from.
type RegisterMigration struct {
	// TokenFrom says how the old command passed its token: "--registration-token",
	// "REGISTRATION_TOKEN", "--token", "CI_SERVER_TOKEN" or "" when it passed none.
	TokenFrom string `json:"token_from,omitempty"`
	// TokenKind is what that token was: "registration token", "runner authentication token",
	// "variable $NAME", "command output" or "token of unknown kind".
	TokenKind string `json:"token_kind,omitempty"`
	// KeptArgs are the host-side register arguments, in order, as the new command passes them.
	KeptArgs []string `json:"kept_args,omitempty"`
	// Warnings are what the user should know, one sentence each, never a token.
	Warnings []string `json:"warnings,omitempty"`

	runner  spec.Runner
	url     *word  // the --url value, nil when the command gave none
	launch  []word // what runs gitlab-runner: sudo, env assignments, docker run …
	program word   // gitlab-runner, a path to it, or its image
	globals []word // gitlab-runner options before "register", such as --debug
	kept    []word // host-side register arguments
	secrets []secretValue
}

// Runner returns the runner attributes the command set, with gitlab-runner's defaults for a
// legacy registration: locked unless --locked=false, and untagged jobs run when there are no
// tags. Type and owner are left for the caller, as is the description when none was given.
func (m *RegisterMigration) Runner() spec.Runner {
	r := m.runner
	r.TagList = append([]string(nil), r.TagList...)
	return r
}

// URL returns the GitLab URL the command gave (--url, -u or CI_SERVER_URL), or "" when it gave
// none or took it from the shell (such as "$CI_SERVER_URL"), which runner-bootstrap cannot read.
func (m *RegisterMigration) URL() string {
	if m.url == nil || m.url.expands() {
		return ""
	}
	return scrubSecrets(m.url.String(), m.secrets)
}

var shellNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewCommand returns the command that registers a runner manager with the new workflow:
//
//	gitlab-runner register --non-interactive --url URL --token "$RUNNER_TOKEN" <host-side flags>
//
// with what launched the old command (sudo, env assignments, docker run …) kept in front, the
// same gitlab-runner binary or image, every server-side flag and variable and the old token
// dropped, and the host-side flags kept in their order. The token is not written: tokenVar
// (default RUNNER_TOKEN) names the variable the shell expands. Words are quoted for a POSIX
// shell; a URL the command did not give becomes "$CI_SERVER_URL".
func (m *RegisterMigration) NewCommand(tokenVar string) string {
	if tokenVar == "" {
		tokenVar = spec.DefaultKey
	}
	ref := "$" + tokenVar
	if !shellNameRE.MatchString(tokenVar) {
		// Not a shell variable name: ${…} makes the shell fail loudly instead of expanding a prefix.
		ref = "${" + tokenVar + "}"
	}
	var parts []string
	add := func(ws ...word) {
		for _, w := range ws {
			parts = append(parts, quote(m.clean(w)))
		}
	}
	add(m.launch...)
	add(m.program)
	add(m.globals...)
	parts = append(parts, "register", "--non-interactive", "--url")
	if m.url != nil {
		add(*m.url)
	} else {
		parts = append(parts, `"$CI_SERVER_URL"`)
	}
	parts = append(parts, "--token", `"`+ref+`"`)
	add(m.kept...)
	return strings.Join(parts, " ")
}

// clean hides tokens in w, segment by segment so quoting still knows what is live.
func (m *RegisterMigration) clean(w word) word {
	text := w.String()
	if scrubSecrets(text, m.secrets) == text {
		return w
	}
	// A token may span segments: fall back to one literal segment.
	return literal(scrubSecrets(text, m.secrets))
}

// ParseRegisterCommand reads a legacy gitlab-runner register command line: shell quoting and
// backslash-newline continuations, a leading sudo or VAR=value assignments, a docker run
// launcher, gitlab-runner or a path to it, then register with --flag value or --flag=value
// options. Other commands joined with ; && || or newlines are ignored (with a warning), except
// export VAR=value and VAR=value lines, which set register variables. Errors are fail.Usagef
// errors and never contain a token.
func ParseRegisterCommand(cmdline string) (*RegisterMigration, error) {
	if !utf8.ValidString(cmdline) {
		// A shell passes such bytes through, but they could not be re-quoted faithfully.
		return nil, fail.Usagef("the register command is not valid UTF-8 text: expected the command line as a shell would read it")
	}
	words, err := lex(cmdline)
	if err != nil {
		return nil, err
	}
	var commands [][]word
	var cur []word
	for _, w := range words {
		switch w.op {
		case "":
			cur = append(cur, w)
			continue
		case ";", "&&", "||", "&", "\n":
		default:
			return nil, fail.Usagef("the command line uses the shell operator %q, which is not supported here: expected one gitlab-runner register command", w.op)
		}
		if len(cur) > 0 {
			commands = append(commands, cur)
		}
		cur = nil
	}
	if len(cur) > 0 {
		commands = append(commands, cur)
	}

	m := &RegisterMigration{}
	env := map[setting]envValue{}
	var reg []word
	var regAt, others int
	found := 0
	for _, c := range commands {
		if assigns, ok := assignments(c); ok {
			for _, a := range assigns {
				if a.s == settingHost {
					// gitlab-runner also reads host-side settings (RUNNER_EXECUTOR,
					// DOCKER_IMAGE, …) from the environment: they stay needed.
					m.Warnings = append(m.Warnings, fmt.Sprintf("%s is set on a line of its own and is not part of the new command: keep setting it on the host (gitlab-runner reads it from the environment)", a.name))
					continue
				}
				m.collectEnv(env, a)
			}
			continue
		}
		if at := findRegister(c); at >= 0 {
			found++
			reg, regAt = c, at
			continue
		}
		others++
	}
	switch {
	case found == 0:
		return nil, fail.Usagef("the command line has no gitlab-runner register: expected a command such as gitlab-runner register --url https://gitlab.com --registration-token ...")
	case found > 1:
		return nil, fail.Usagef("the command line has %d gitlab-runner register commands: expected one", found)
	}
	if others > 0 {
		m.Warnings = append(m.Warnings, fmt.Sprintf("the command line has %d other shell command(s) besides gitlab-runner register: they are ignored", others))
	}

	// The launcher: keep it, but take out the register variables it sets.
	prog := regAt
	for i := 0; i < prog; i++ {
		w := reg[i]
		name, value, isAssign := splitAssign(w)
		if isAssign {
			if s, ok := registerEnv[name]; ok {
				m.collectEnv(env, assign{name, value, s})
				if s == setDescription {
					m.launch = append(m.launch, w) // gitlab-runner still names its config entry with it
				}
				continue
			}
			m.launch = append(m.launch, w)
			continue
		}
		if t := w.String(); (t == "-e" || t == "--env") && i+1 < prog {
			next := reg[i+1]
			name, value, isAssign := splitAssign(next)
			if !isAssign {
				name = next.String()
			}
			if s, ok := registerEnv[name]; ok {
				if isAssign {
					m.collectEnv(env, assign{name, value, s})
				} else {
					m.collectEnv(env, assign{name, literal(""), s})
				}
				if s == setDescription {
					m.launch = append(m.launch, w, next)
				}
				i++
				continue
			}
		}
		if t := w.String(); strings.HasPrefix(t, "--env=") {
			_, rest := w.cut(len("--env="))
			if name, value, ok := splitAssign(rest); ok {
				if s, known := registerEnv[name]; known {
					m.collectEnv(env, assign{name, value, s})
					if s == setDescription {
						m.launch = append(m.launch, w)
					}
					continue
				}
			}
		}
		m.launch = append(m.launch, w)
	}
	m.program = reg[prog]
	i := prog + 1
	for ; reg[i].String() != "register"; i++ {
		m.globals = append(m.globals, reg[i])
	}
	flags, err := m.parseArgs(reg[i+1:])
	if err != nil {
		return nil, err
	}
	if err := m.apply(env, flags); err != nil {
		return nil, err
	}
	for _, w := range m.kept {
		m.KeptArgs = append(m.KeptArgs, scrubSecrets(w.String(), m.secrets))
	}
	for i, w := range m.Warnings {
		m.Warnings[i] = scrubSecrets(w, m.secrets)
	}
	return m, nil
}

// assign is a register variable set by the command line.
type assign struct {
	name  string
	value word
	s     setting
}

type envValue struct {
	name  string
	value word
}

// assignments reports a command that only sets variables (VAR=value … or export VAR=value …).
func assignments(c []word) ([]assign, bool) {
	start := 0
	if c[0].String() == "export" && !c[0].expands() {
		start = 1
	}
	var out []assign
	for _, w := range c[start:] {
		name, value, ok := splitAssign(w)
		if !ok {
			if start == 1 && strings.HasPrefix(w.String(), "-") {
				continue // export -n and friends
			}
			return nil, false
		}
		s, known := registerEnv[name]
		if !known {
			s = settingHost
		}
		out = append(out, assign{name, value, s})
	}
	return out, true
}

// splitAssign splits NAME=value.
func splitAssign(w word) (string, word, bool) {
	t := w.String()
	eq := strings.IndexByte(t, '=')
	if eq < 1 || !shellNameRE.MatchString(t[:eq]) {
		return "", word{}, false
	}
	name, _ := w.cut(eq)
	if name.expands() {
		return "", word{}, false
	}
	_, value := w.cut(eq + 1)
	return t[:eq], value, true
}

func (m *RegisterMigration) collectEnv(env map[setting]envValue, a assign) {
	env[a.s] = envValue{a.name, a.value}
}

// findRegister returns the index of gitlab-runner in a command that runs gitlab-runner register,
// or -1.
func findRegister(c []word) int {
	for i, w := range c {
		if w.expands() || !isRunnerProgram(w.String()) {
			continue
		}
		for j := i + 1; j < len(c); j++ {
			t := c[j].String()
			switch {
			case t == "register" && !c[j].expands():
				return i
			case strings.HasPrefix(t, "-"):
				continue // a global option such as --debug or --log-level debug
			case j > i+1 && (c[j-1].String() == "--log-level" || c[j-1].String() == "-l" || c[j-1].String() == "--log-format"):
				continue
			}
			break
		}
	}
	return -1
}

// isRunnerProgram recognises gitlab-runner, a path to it, a downloaded binary such as
// gitlab-runner-linux-amd64, gitlab-runner.exe, the old gitlab-ci-multi-runner, and an image
// such as gitlab/gitlab-runner:alpine.
func isRunnerProgram(s string) bool {
	s = strings.ReplaceAll(s, `\`, "/")
	base := path.Base(s)
	if at := strings.IndexByte(base, '@'); at >= 0 {
		base = base[:at]
	}
	if colon := strings.IndexByte(base, ':'); colon >= 0 {
		base = base[:colon]
	}
	base = strings.TrimSuffix(strings.ToLower(base), ".exe")
	return base == "gitlab-runner" || base == "gitlab-ci-multi-runner" ||
		(strings.HasPrefix(base, "gitlab-runner-") && !strings.HasPrefix(base, "gitlab-runner-helper"))
}

// source is where a setting's value came from: a flag or a variable.
type source struct {
	what  string // "--locked" or "REGISTER_LOCKED"
	value word
	has   bool // a value was given; a bare boolean flag has none and means true
	space bool // a boolean whose value was a separate word: --locked "false"
}

// flagValue is a register option as given on the command line.
type flagValue struct {
	name      string // as written, with its dashes: --locked
	value     word
	has       bool // a value was given (--locked=false, --locked false, --url URL)
	spaceBool bool // a boolean whose value was a separate word: --locked "false"
}

// parseArgs reads the arguments after register: the settings it knows, the rest kept as they are.
func (m *RegisterMigration) parseArgs(args []word) (map[setting]flagValue, error) {
	flags := map[setting]flagValue{}
	for i := 0; i < len(args); i++ {
		w := args[i]
		t := w.String()
		if t == "--" {
			m.kept = append(m.kept, args[i:]...)
			break
		}
		if !strings.HasPrefix(t, "-") || t == "-" || w.expands() && !strings.HasPrefix(t, "--") {
			m.kept = append(m.kept, w)
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(t, "-"), "-")
		var value word
		has := false
		if eq := strings.IndexByte(name, '='); eq >= 0 {
			_, value = w.cut(len(t) - len(name) + eq + 1)
			name, has = name[:eq], true
		}
		s, known := registerFlags[name]
		if !known {
			m.kept = append(m.kept, w)
			if isSecretFlag(name) {
				m.Warnings = append(m.Warnings, fmt.Sprintf("--%s passes a secret on the command line, where other users of the host can read it: gitlab-runner can take it from an environment variable instead", name))
			}
			continue
		}
		fv := flagValue{name: "--" + name, value: value, has: has}
		if len(name) == 1 {
			fv.name = "-" + name
		}
		switch {
		case has:
		case s.boolean():
			// gitlab-runner reads --locked false as --locked and a stray "false"; the docs'
			// examples write it anyway, so take the value the writer meant.
			if i+1 < len(args) && !args[i+1].expands() && isBoolWord(args[i+1].String()) {
				fv.value, fv.has, fv.spaceBool = args[i+1], true, true
				i++
			}
		case i+1 < len(args):
			fv.value, fv.has = args[i+1], true
			i++
		default:
			return nil, fail.Usagef("%s has no value: expected %s followed by a value", fv.name, fv.name)
		}
		if s == setDescription {
			m.kept = append(m.kept, w) // the name stays: gitlab-runner names its config entry with it
			if !has && fv.has {
				m.kept = append(m.kept, fv.value)
			}
		}
		if s == setRegistrationToken || s == setToken {
			m.noteSecret(fv.value, s)
		}
		flags[s] = fv
	}
	return flags, nil
}

func isBoolWord(s string) bool {
	_, err := strconv.ParseBool(s)
	return err == nil
}

// isSecretFlag recognises host-side flags that carry credentials, such as --cache-s3-secret-key.
func isSecretFlag(name string) bool {
	for _, s := range []string{"password", "secret", "private-key", "account-key", "access-key", "token"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// noteSecret records a token value so it can be scrubbed from everything returned.
func (m *RegisterMigration) noteSecret(value word, s setting) {
	if value.expands() {
		return
	}
	kind := tokenKindOf(value.String(), s)
	m.secrets = append(m.secrets, secretValue{value: value.String(), kind: kind})
}

// tokenKindOf names a literal token given for setting s.
func tokenKindOf(v string, s setting) string {
	if k := firstTokenKind(v); k != "" {
		return k
	}
	if s == setRegistrationToken {
		return "registration token"
	}
	return "token of unknown kind"
}

// apply turns variables and flags (flags win, as in gitlab-runner) into the runner attributes.
func (m *RegisterMigration) apply(env map[setting]envValue, flags map[setting]flagValue) error {
	for _, ev := range env {
		if ev.value.String() != "" && (envSetting(ev.name) == setRegistrationToken || envSetting(ev.name) == setToken) {
			m.noteSecret(ev.value, envSetting(ev.name))
		}
	}
	get := func(s setting) (source, bool) {
		if f, ok := flags[s]; ok {
			return source{f.name, f.value, f.has, f.spaceBool}, true
		}
		if e, ok := env[s]; ok {
			return source{e.name, e.value, true, false}, true
		}
		return source{}, false
	}
	// literalValue returns the value if the shell would not change it; otherwise it warns.
	literalValue := func(src source, s setting) (string, bool) {
		if src.value.expands() {
			m.Warnings = append(m.Warnings, fmt.Sprintf("%s comes from the shell (%s), which runner-bootstrap cannot evaluate: pass %s to runner-bootstrap migrate", src.what, scrubSecrets(src.value.String(), m.secrets), s.createFlag()))
			return "", false
		}
		return src.value.String(), true
	}
	boolean := func(s setting, dflt bool) (bool, error) {
		src, ok := get(s)
		if !ok {
			return dflt, nil
		}
		if !src.has {
			return true, nil
		}
		v, ok := literalValue(src, s)
		if !ok {
			return dflt, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			if strings.HasPrefix(src.what, "-") {
				return false, fail.Usagef("%s=%s is not a boolean: expected %s, %s=true or %s=false", src.what, show(v), src.what, src.what, src.what)
			}
			return false, fail.Usagef("%s is %s: expected true or false", src.what, show(v))
		}
		if src.space {
			m.Warnings = append(m.Warnings, fmt.Sprintf("%s %s is read as %t here, as its writer meant; gitlab-runner parses boolean flags as switches, so the old command may have registered the runner with %s=true: write %s=%t", src.what, v, b, src.what, src.what, b))
		}
		return b, nil
	}

	var r spec.Runner
	if src, ok := get(setTagList); ok {
		if v, ok := literalValue(src, setTagList); ok {
			for t := range strings.SplitSeq(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					r.TagList = append(r.TagList, scrubSecrets(t, m.secrets))
				}
			}
		}
	}
	var err error
	if r.Locked, err = boolean(setLocked, true); err != nil {
		return err
	}
	if r.RunUntagged, err = boolean(setRunUntagged, false); err != nil {
		return err
	}
	if len(r.TagList) == 0 {
		// gitlab-runner register runs untagged jobs whenever the tag list is empty.
		r.RunUntagged = true
	}
	if r.Paused, err = boolean(setPaused, false); err != nil {
		return err
	}
	if _, err = boolean(setNonInteractive, true); err != nil {
		return err
	}
	if src, ok := get(setAccessLevel); ok {
		if v, ok := literalValue(src, setAccessLevel); ok && v != "" {
			if v != spec.NotProtected && v != spec.RefProtected {
				return fail.Usagef("%s is %s: expected not_protected or ref_protected", src.what, show(v))
			}
			r.AccessLevel = v
		}
	}
	if src, ok := get(setMaximumTimeout); ok {
		if v, ok := literalValue(src, setMaximumTimeout); ok && v != "" {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 {
				return fail.Usagef("%s is %s: expected a number of seconds such as 3600", src.what, show(v))
			}
			r.MaximumTimeout = n
		}
	}
	if src, ok := get(setMaintenanceNote); ok {
		if v, ok := literalValue(src, setMaintenanceNote); ok {
			r.MaintenanceNote = scrubSecrets(v, m.secrets)
		}
	}
	if src, ok := get(setDescription); ok {
		if v, ok := literalValue(src, setDescription); ok {
			r.Description = scrubSecrets(v, m.secrets)
		}
	}
	m.runner = r

	if src, ok := get(setURL); ok {
		u := src.value
		m.url = &u
	}
	if m.url != nil && m.url.String() == "" {
		m.url = nil // docker run -e CI_SERVER_URL: the value comes from the host
	}
	reg, regOK := get(setRegistrationToken)
	tok, tokOK := get(setToken)
	switch {
	case regOK && reg.has:
		m.TokenFrom, m.TokenKind = reg.what, describeToken(reg.value, setRegistrationToken)
	case tokOK && tok.has:
		m.TokenFrom, m.TokenKind = tok.what, describeToken(tok.value, setToken)
	}
	switch {
	case m.TokenKind == "runner authentication token" && m.TokenFrom != "--token" && m.TokenFrom != "-t" && m.TokenFrom != "CI_SERVER_TOKEN":
		m.Warnings = append(m.Warnings, "the old command passes a runner authentication token as a registration token (gitlab-runner's legacy-compatible registration): its runner already exists, and the server-side flags had no effect on it")
	case m.TokenFrom == "--token" || m.TokenFrom == "-t" || m.TokenFrom == "CI_SERVER_TOKEN":
		m.Warnings = append(m.Warnings, "the old command already registers with --token: only its server-side flags need to go, since gitlab-runner refuses them next to a runner authentication token")
	}
	for _, sv := range m.secrets {
		if sv.kind == "registration token" {
			m.Warnings = append(m.Warnings, "the old command holds a registration token in plain text: reset the registration token in GitLab once every runner is migrated, since it may be in shell history and logs")
			break
		}
	}
	return nil
}

func envSetting(name string) setting { return registerEnv[name] }

// describeToken says what a token value is without showing it.
func describeToken(v word, s setting) string {
	t := v.String()
	switch {
	case t == "":
		return "value from the host environment"
	case v.expands():
		if strings.HasPrefix(t, "$(") || strings.HasPrefix(t, "`") {
			return "command output"
		}
		name := strings.Trim(t, "${}")
		if shellNameRE.MatchString(name) {
			return "variable $" + name
		}
		return "shell expansion"
	}
	return tokenKindOf(t, s)
}

// createFlag is the runner-bootstrap flag for a setting, for messages.
func (s setting) createFlag() string {
	switch s {
	case setTagList:
		return "--tag-list"
	case setRunUntagged:
		return "--run-untagged"
	case setLocked:
		return "--locked"
	case setAccessLevel:
		return "--access-level"
	case setMaximumTimeout:
		return "--maximum-timeout"
	case setPaused:
		return "--paused"
	case setMaintenanceNote:
		return "--maintenance-note"
	case setDescription:
		return "--description"
	case setURL:
		return "--gitlab-url"
	}
	return ""
}
