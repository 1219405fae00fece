package gitlab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"syscall"

	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// ErrNotFound is wrapped by every error for a 404 answer.
var ErrNotFound = errors.New("not found")

// ErrTaken is wrapped by the error of a create that GitLab refused because the object exists
// already (400 "has already been taken": a variable of that key and scope). GitLab gives no
// code for it, so the answer's text is read here, once.
var ErrTaken = errors.New("already taken")

// errTransport is wrapped by every error where no HTTP answer arrived: the server may or may
// not have acted on the request.
var errTransport = errors.New("no answer from GitLab")

// IsNotFound reports whether err is GitLab's 404.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsTaken reports whether err is GitLab refusing a create because the object exists already.
func IsTaken(err error) bool { return errors.Is(err, ErrTaken) }

// IsAmbiguous reports whether the request may have been carried out although it failed (the
// connection dropped or timed out before an answer arrived).
func IsAmbiguous(err error) bool { return errors.Is(err, errTransport) }

// StatusCode returns the HTTP status of a GitLab answer, or 0.
func StatusCode(err error) int {
	if se, ok := errors.AsType[*statusError](err); ok {
		return se.status
	}
	return 0
}

// op names the call for the user: "create the runner", the object a 404 is about and the role
// a 403 asks for.
type op struct {
	action string
	object string
	role   string
}

type statusError struct {
	status   int
	msg      string
	sentinel error
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.sentinel }

// wrap turns a client-go error into one sentence with an exit code. ctx is the run's context:
// only its expiry is the run's --timeout; any other timeout is one request's.
func wrap(ctx context.Context, o op, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gl.ErrNotFound) {
		obj := o.object
		if obj == "" {
			obj = "the object"
		}
		return fail.WithCode(fail.CodeNotFound, &statusError{
			status:   http.StatusNotFound,
			msg:      fmt.Sprintf("cannot %s: %s was not found (404); check the id or path and that the token's user can see it", o.action, obj),
			sentinel: ErrNotFound,
		})
	}
	if er, ok := errors.AsType[*gl.ErrorResponse](err); ok {
		return fromResponse(o, er)
	}
	if ctx.Err() != nil {
		why := "the run's --timeout expired before GitLab answered"
		if errors.Is(ctx.Err(), context.Canceled) {
			why = "the run was interrupted before GitLab answered"
		}
		return fail.WithCode(fail.CodeFailure, &statusError{msg: fmt.Sprintf("cannot %s: %s", o.action, why), sentinel: errTransport})
	}
	var re *RedirectError
	var ob *OffBaseError
	var ra *RetryAfterError
	var ba *BadAnswerError
	var ute *json.UnmarshalTypeError
	var ng *NotGitLabError
	switch {
	case errors.As(err, &ng):
		// No ErrNotFound sentinel: nothing says the object is missing, so no caller may
		// go on as if it were (create a variable, report a runner gone).
		return fail.WithCode(fail.CodeUsage, &statusError{status: http.StatusNotFound, msg: fmt.Sprintf("cannot %s: %s", o.action, ng)})
	case errors.As(err, &ba):
		return fail.WithCode(fail.CodeFailure, &statusError{status: ba.Status, msg: fmt.Sprintf("cannot %s: %s", o.action, ba), sentinel: errTransport})
	case errors.As(err, &ute):
		return fail.WithCode(fail.CodeFailure, &statusError{msg: fmt.Sprintf("cannot %s: GitLab answered with a JSON %s where its API returns %s, which GitLab never does: check that --gitlab-url is your GitLab instance", o.action, ute.Value, jsonKind(ute)), sentinel: errTransport})
	case errors.As(err, &ra):
		return fail.WithCode(fail.CodeFailure, &statusError{status: http.StatusTooManyRequests, msg: fmt.Sprintf("cannot %s: %s", o.action, ra)})
	case errors.As(err, &re):
		return fail.WithCode(fail.CodeUsage, &statusError{status: re.Status, msg: fmt.Sprintf("cannot %s: %s", o.action, re)})
	case errors.As(err, &ob):
		return fail.WithCode(fail.CodeUsage, &statusError{msg: fmt.Sprintf("cannot %s: %s", o.action, ob)})
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return fail.WithCode(fail.CodeFailure, &statusError{msg: fmt.Sprintf("cannot %s: %s", o.action, transportCause(host, ue)), sentinel: errTransport})
	}
	return fail.WithCode(fail.CodeFailure, &statusError{msg: fmt.Sprintf("cannot %s: %s", o.action, rootCause(err)), sentinel: errTransport})
}

func fromResponse(o op, er *gl.ErrorResponse) error {
	status := er.StatusCode
	if status == 0 && er.Response != nil {
		status = er.Response.StatusCode
	}
	body := parseBody(er.Body)
	se := &statusError{status: status}
	code := fail.CodeFailure
	switch {
	case status == http.StatusUnauthorized:
		code = fail.CodeAuth
		why := "it is unknown, expired or revoked"
		if body.description != "" {
			why = firstSentence(body.description)
		}
		se.msg = fmt.Sprintf("cannot %s: GitLab refused the access token (401 Unauthorized: %s); set GITLAB_TOKEN to a valid personal, group or project access token with the api and create_runner scopes", o.action, why)
	case status == http.StatusForbidden && body.err == "insufficient_scope":
		code = fail.CodeAuth
		se.msg = fmt.Sprintf("cannot %s: the access token lacks the scope for it (403 insufficient_scope; GitLab accepts %s here); give the token the api and create_runner scopes", o.action, orDefault(body.scope, "api"))
	case status == http.StatusForbidden:
		code = fail.CodeAuth
		role := o.role
		if role == "" {
			role = "more rights on this resource"
		}
		se.msg = fmt.Sprintf("cannot %s: GitLab answered 403 (%s); the token's user needs %s", o.action, orDefault(body.text, "Forbidden"), role)
	case status == http.StatusTooManyRequests:
		se.msg = fmt.Sprintf("cannot %s: GitLab rate-limited the request (429 Too Many Requests); try again later", o.action)
		if retried(er.Response) {
			se.msg = fmt.Sprintf("cannot %s: GitLab kept rate-limiting the requests (429 Too Many Requests) after retries; try again later", o.action)
		}
	case status >= 500:
		se.msg = fmt.Sprintf("cannot %s: GitLab failed with HTTP %d%s; the command is safe to run again", o.action, status, afterRetries(er.Response))
		if !retried(er.Response) && er.Response != nil && er.Response.Request != nil && er.Response.Request.Method == http.MethodPost {
			// A POST that GitLab answered with 5xx is never repeated (it may have acted).
			se.msg = fmt.Sprintf("cannot %s: GitLab failed with HTTP %d (not retried: GitLab may have acted on it); the command is safe to run again", o.action, status)
		}
	case status == http.StatusConflict && strings.Contains(body.text, "multiple variables"):
		code = fail.CodeConflict
		se.msg = fmt.Sprintf("cannot %s: GitLab holds several variables with this key in different environment scopes (409); name the one you mean with --variable-environment-scope", o.action)
	default:
		code = fail.CodeConflict
		se.msg = fmt.Sprintf("cannot %s: GitLab rejected it (%d): %s", o.action, status, firstSentence(orDefault(body.text, http.StatusText(status))))
		if status == http.StatusBadRequest && strings.Contains(body.text, "has already been taken") {
			se.sentinel = ErrTaken
		}
	}
	return fail.WithCode(code, se)
}

// afterRetries is " after retries" when the call was in fact sent more than once: not with
// --max-retries 0, not for a POST that is never repeated, not for a 501.
func afterRetries(resp *http.Response) string {
	if retried(resp) {
		return " after retries"
	}
	return ""
}

type errBody struct {
	text, err, description, scope string
}

// parseBody reads GitLab's error shapes: {"message": string|object}, {"error": string,
// "error_description": string, "scope": string}, or plain text.
func parseBody(b []byte) errBody {
	var out errBody
	var raw map[string]any
	if json.Unmarshal(b, &raw) != nil {
		out.text = strings.TrimSpace(string(b))
		if len(out.text) > 200 || strings.Contains(out.text, "<") {
			out.text = ""
		}
		return out
	}
	out.err, _ = raw["error"].(string)
	out.description, _ = raw["error_description"].(string)
	out.scope, _ = raw["scope"].(string)
	switch m := raw["message"].(type) {
	case string:
		out.text = m
	case map[string]any:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			var msgs []string
			switch v := m[k].(type) {
			case []any:
				for _, x := range v {
					msgs = append(msgs, fmt.Sprint(x))
				}
			default:
				msgs = append(msgs, fmt.Sprint(v))
			}
			if k == "base" {
				parts = append(parts, strings.Join(msgs, ", "))
			} else {
				parts = append(parts, k+" "+strings.Join(msgs, ", "))
			}
		}
		out.text = strings.Join(parts, "; ")
	}
	if out.text == "" {
		out.text = out.err
		if out.description != "" {
			out.text += ": " + out.description
		}
	}
	return out
}

// firstSentence keeps GitLab's first sentence, without its full stop, so that the program's
// message stays one sentence.
func firstSentence(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// jsonKind names what the decoder expected, in JSON's words.
func jsonKind(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "another shape"
	}
	switch e.Type.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	default:
		return "a number"
	}
}

// missingID is a successful answer without the object's id: taking it as 0 would make
// "project 0" or "runner 0" of it.
func missingID(o op, what string) error {
	return fail.WithCode(fail.CodeFailure, &statusError{msg: fmt.Sprintf("cannot %s: GitLab's answer has no %s id, which GitLab's API always sends: check that --gitlab-url is your GitLab instance", o.action, what), sentinel: errTransport})
}

// transportCause says, in one clause naming the host, why no answer came: the proxy, TLS (an
// unknown authority, a certificate for another name, the handshake), DNS, a refused or reset
// connection, a timeout.
func transportCause(host string, ue *url.Error) string {
	err := ue.Err
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "proxyconnect" {
		proxy := "the proxy"
		if inner, ok := errors.AsType[*net.OpError](op.Err); ok && inner.Addr != nil {
			proxy = "the proxy " + inner.Addr.String()
		} else if op.Addr != nil {
			proxy = "the proxy " + op.Addr.String()
		}
		return fmt.Sprintf("%s (from HTTPS_PROXY/HTTP_PROXY) could not be reached to connect to GitLab at %s (%s); check the proxy settings, or add the host to NO_PROXY", proxy, host, rootCause(op.Err))
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return fmt.Sprintf("GitLab at %s presented a TLS certificate signed by an unknown authority; pass --ca-file (in a CI job CI_SERVER_TLS_CA_FILE is used) with the CA bundle that signed it", host)
	}
	if hn, ok := errors.AsType[x509.HostnameError](err); ok {
		return fmt.Sprintf("the TLS certificate of %s is not valid for that name (%s); set --gitlab-url to a name the certificate covers", host, strings.TrimPrefix(hn.Error(), "x509: "))
	}
	if ci, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return fmt.Sprintf("the TLS certificate of %s is not valid (%s)", host, strings.TrimPrefix(ci.Error(), "x509: "))
	}
	if cv, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return fmt.Sprintf("the TLS certificate of %s could not be verified (%s); pass --ca-file with the CA bundle that signed it", host, rootCause(cv.Err))
	}
	if dns, ok := errors.AsType[*net.DNSError](err); ok {
		if dns.IsNotFound {
			return fmt.Sprintf("the host name %s does not resolve (DNS: no such host); check --gitlab-url", dns.Name)
		}
		return fmt.Sprintf("the host name %s could not be resolved (DNS: %s)", dns.Name, dns.Err)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("GitLab at %s could not be reached (connection refused); check --gitlab-url and that GitLab listens there", host)
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Sprintf("GitLab at %s could not be reached (the connection was reset before GitLab answered)", host)
	case ue.Timeout() || errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("GitLab at %s could not be reached (no answer within the request timeout, --request-timeout)", host)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("GitLab at %s could not be reached (the connection was closed before GitLab answered)", host)
	}
	cause := rootCause(err)
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok || strings.Contains(cause, "HTTP response to HTTPS client") {
		return fmt.Sprintf("the TLS handshake with %s failed (the server does not speak TLS on that port); check the scheme and port of --gitlab-url", host)
	}
	if ae, ok := errors.AsType[tls.AlertError](err); ok {
		return fmt.Sprintf("the TLS handshake with %s failed (the server sent the alert %q)", host, strings.TrimPrefix(ae.Error(), "tls: "))
	}
	if strings.Contains(cause, "connection reset") {
		cause = "the connection was reset before GitLab answered"
	}
	return fmt.Sprintf("GitLab at %s could not be reached (%s)", host, cause)
}

// rootCause strips Go's wrapping down to the last message (e.g. "connection refused").
func rootCause(err error) string {
	if dns, ok := errors.AsType[*net.DNSError](err); ok {
		return "cannot resolve host " + dns.Name
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	return err.Error()
}
