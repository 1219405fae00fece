// Package gitlab is the product's narrow view of the GitLab API: the runner, token, variable
// and namespace calls it needs, over client-go v2, with retries, timeouts and TLS configured
// once and every error turned into a sentence a platform engineer can act on.
package gitlab

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/sirupsen/logrus"
	gl "gitlab.com/gitlab-org/api/client-go/v2"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/readlimit"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// Config is everything needed to talk to one GitLab instance.
type Config struct {
	// BaseURL is the instance URL, e.g. https://gitlab.example.com; /api/v4 is appended.
	BaseURL string
	// Token is the access token (never logged).
	Token string
	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string
	// InsecureHTTP allows plain http:// to a non-loopback host.
	InsecureHTTP bool
	// RequestTimeout bounds one HTTP attempt (default 30s).
	RequestTimeout time.Duration
	// RetryMax is the number of retries for retryable answers (default 5; 0 with NoRetries).
	RetryMax int
	// NoRetries turns retries off (fault-injection tests).
	NoRetries bool
	// MaxRetryWait caps one wait honouring Retry-After or RateLimit-Reset (default 60s).
	MaxRetryWait time.Duration
	// Log receives one debug line per HTTP request (method, path, status, duration).
	Log logrus.FieldLogger
	// UserAgent identifies the tool.
	UserAgent string
	// RateLimit is the requests per minute to spend when GitLab announces no budget of its
	// own (no RateLimit-* headers); 0: no limit of the tool's own. See budget.
	RateLimit int
	// Clock is the time source of the rate-limit gate (tests); nil: time.Now.
	Clock func() time.Time
}

// Client is a connection to GitLab.
type Client struct {
	gl        *gl.Client
	base      *url.URL
	noRetries bool
	budget    *budget

	// calls counts the API calls made (see Calls).
	calls atomic.Int64

	// server is what Server learned, read once per run.
	serverMu sync.Mutex
	server   *Server
}

// New validates cfg and builds a client. Nothing is sent yet.
func New(cfg Config) (*Client, error) {
	base, err := checkBaseURL(cfg.BaseURL, cfg.InsecureHTTP)
	if err != nil {
		return nil, err
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.MaxRetryWait == 0 {
		cfg.MaxRetryWait = 60 * time.Second
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		cfg.Log = l
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := readlimit.ReadFile(context.Background(), "the CA file", cfg.CAFile, readlimit.CAFile)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fail.Usagef("the CA file %s holds no PEM certificate: expected a PEM bundle such as the one in CI_SERVER_TLS_CA_FILE", cfg.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	gate := newBudget(cfg.RateLimit, cfg.Clock)
	// No http.Client.Timeout: it would count the wait at the gate; the gate's transport
	// bounds each attempt instead.
	httpClient := &http.Client{
		Transport: &logTransport{next: &budgetTransport{
			next: &guardTransport{next: transport, base: base, insecure: cfg.InsecureHTTP}, b: gate, timeout: cfg.RequestTimeout,
		}, log: cfg.Log},
		CheckRedirect: refuseRedirect,
	}
	opts := []gl.ClientOptionFunc{
		gl.WithBaseURL(base.String() + "/api/v4"),
		gl.WithHTTPClient(httpClient),
		// A POST that failed ambiguously (the server may have acted) is not repeated
		// blindly: the caller reconciles by listing what exists instead.
		gl.WithOnlyIdempotentRetries(),
		gl.WithCustomBackoff(backoff(cfg.MaxRetryWait)),
		gl.WithCustomLeveledLogger(quietLogger{cfg.Log}),
		// The budget gate in the transport paces every attempt; client-go's own limiter
		// would pace at 66% of RateLimit-Limit whatever budget is left.
		gl.WithCustomLimiter(unlimited{}),
	}
	if cfg.UserAgent != "" {
		opts = append(opts, gl.WithUserAgent(cfg.UserAgent))
	}
	if cfg.NoRetries {
		opts = append(opts, gl.WithoutRetries())
	} else if cfg.RetryMax > 0 {
		opts = append(opts, gl.WithCustomRetryMax(cfg.RetryMax))
	}
	c, err := gl.NewClient(cfg.Token, opts...)
	if err != nil {
		return nil, fail.Usagef("cannot set up the GitLab client for %s: %v", base, err)
	}
	return &Client{gl: c, base: base, noRetries: cfg.NoRetries, budget: gate}, nil
}

// ShareBudget tells the client that processes processes (the shards of one manifest) spend the
// same user's rate limit at once, each with at most concurrency requests in flight: the budget
// gate then leaves that many requests of the announced budget to the others, and paces to its
// share of Config.RateLimit when GitLab announces nothing.
func (c *Client) ShareBudget(processes, concurrency int) { c.budget.share(processes, concurrency) }

// BaseURL is the instance URL the client talks to, without /api/v4.
func (c *Client) BaseURL() string { return c.base.String() }

func checkBaseURL(raw string, insecure bool) (*url.URL, error) {
	if raw == "" {
		return nil, fail.Usagef("no GitLab URL: pass --gitlab-url or set CI_SERVER_URL, for example https://gitlab.example.com")
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fail.Usagef("GitLab URL %q is not valid: expected an http(s) URL such as https://gitlab.example.com", raw)
	}
	if u.User != nil {
		return nil, fail.Usagef("GitLab URL %q contains credentials: pass the access token in GITLAB_TOKEN instead", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/api/v4")
	u.RawQuery, u.Fragment = "", ""
	if u.Scheme == "http" && !insecure && !isLoopback(u.Hostname()) {
		return nil, fail.Usagef("GitLab URL %s uses plain http, which would send the access token unencrypted: use https, or pass --insecure-http if you really mean it", u)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RedirectError is a redirect the client refused to follow. GitLab's API never redirects a
// correct request; following one would send PRIVATE-TOKEN (and, on a 307/308 variable write,
// the body with the runner token) to wherever the answer points, in clear if it points to
// http, and report success for a write that never reached GitLab.
type RedirectError struct {
	// URL is where the request was sent (scheme, host and path; no query).
	URL string
	// Status is the redirect's HTTP status.
	Status int
	// Location is where the server pointed (scheme and host only: the rest is the server's).
	Location string
	// Suggest is the --gitlab-url the Location suggests, if it looks like the same API elsewhere.
	Suggest string
}

func (e *RedirectError) Error() string {
	fix := "set --gitlab-url to the address of the GitLab instance itself (what the browser shows, without /api/v4)"
	if e.Suggest != "" {
		fix = "if " + e.Suggest + " is your GitLab instance, set --gitlab-url to " + e.Suggest
	}
	return fmt.Sprintf("the request to %s was answered with a redirect (%d) to %s, which runner-bootstrap never follows because it would carry the access token there: %s", e.URL, e.Status, e.Location, fix)
}

// refuseRedirect is the http.Client's CheckRedirect: every redirect is an error. req is the
// request the redirect would send; via[0] is the one that was answered with it.
func refuseRedirect(req *http.Request, via []*http.Request) error {
	prev := via[len(via)-1]
	e := &RedirectError{URL: printableURL(prev.URL), Location: req.URL.Scheme + "://" + req.URL.Host}
	if req.Response != nil {
		e.Status = req.Response.StatusCode
	}
	if i := strings.Index(req.URL.Path, "/api/v4/"); i >= 0 && (req.URL.Scheme == "https" || isLoopback(req.URL.Hostname())) {
		if prefix := req.URL.Path[:i]; safePath.MatchString(prefix) {
			e.Suggest = e.Location + prefix
		}
	}
	return e
}

// safePath is a path prefix worth repeating in a message (the rest of a Location is whatever
// the server chose to put there).
var safePath = regexp.MustCompile(`^(/[A-Za-z0-9._-]{1,64}){0,4}$`)

func printableURL(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// guardTransport holds every request, not only the configured URL, to the rules of the base
// URL: the same scheme and host (nothing the server answers, such as a pagination link, can
// send the access token elsewhere), and plain http only to loopback unless --insecure-http.
type guardTransport struct {
	next     http.RoundTripper
	base     *url.URL
	insecure bool
}

func (t *guardTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	u := r.URL
	if u.Scheme != t.base.Scheme || !strings.EqualFold(u.Host, t.base.Host) {
		return nil, &OffBaseError{URL: printableURL(u), Base: t.base.String()}
	}
	if u.Scheme == "http" && !t.insecure && !isLoopback(u.Hostname()) {
		return nil, &OffBaseError{URL: printableURL(u), Base: t.base.String(), PlainHTTP: true}
	}
	resp, err := t.next.RoundTrip(r)
	if resp != nil && resp.Body != nil {
		resp.Body = readlimit.Body(resp.Body, readlimit.Response, r.Method+" "+printableURL(u))
		if err == nil && resp.StatusCode/100 == 2 && r.Method != http.MethodHead {
			return checkJSON(r, resp)
		}
		if err == nil && resp.StatusCode == http.StatusNotFound && r.Method != http.MethodHead {
			return checkNotFound(r, resp)
		}
	}
	return resp, err
}

// checkJSON reads a successful answer (bounded) and refuses one that is not JSON, such as a
// proxy's or another server's HTML page or a truncated answer: client-go's decoder would
// otherwise surface a raw "invalid character '<'" or "unexpected EOF". An empty body is fine
// (204, a DELETE).
func checkJSON(r *http.Request, resp *http.Response) (*http.Response, error) {
	b, err := readBack(resp)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 || json.Valid(b) {
		return resp, nil
	}
	start := token.Redact(string(b))
	if len(start) > 48 {
		start = start[:48]
	}
	return nil, &BadAnswerError{Request: r.Method + " " + printableURL(r.URL), Status: resp.StatusCode,
		ContentType: orDefault(resp.Header.Get("Content-Type"), "none"), Start: start}
}

// readBack reads an answer's body (bounded by readlimit) and puts it back for client-go.
func readBack(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// checkNotFound tells GitLab's 404 ({"message":"404 Project Not Found"}, {"error":"404 Not
// Found"} for a missing route) from a 404 of something else at that URL (a web server, a
// GitLab at another relative root): only GitLab's means the object does not exist.
func checkNotFound(r *http.Request, resp *http.Response) (*http.Response, error) {
	b, err := readBack(resp)
	if err != nil {
		return nil, err
	}
	var shape map[string]any
	if json.Unmarshal(b, &shape) == nil && (shape["message"] != nil || shape["error"] != nil) {
		return resp, nil
	}
	return nil, &NotGitLabError{Request: r.Method + " " + r.URL.EscapedPath(), ContentType: orDefault(resp.Header.Get("Content-Type"), "none")}
}

// NotGitLabError is a 404 without GitLab's error body: the API is most likely not at the
// configured URL (a relative root such as /gitlab missing or added, or another server).
type NotGitLabError struct {
	// Request is the method and path that was answered 404; ContentType what came back.
	Request, ContentType string
}

func (e *NotGitLabError) Error() string {
	return fmt.Sprintf("the API answered 404 for %s without GitLab's error body (Content-Type %s), so --gitlab-url may be wrong: set it to the address of the GitLab instance itself, as the browser shows it, including a relative root such as https://host/gitlab if GitLab has one, without /api/v4", e.Request, e.ContentType)
}

// BadAnswerError is a successful HTTP answer that is not the JSON GitLab's API sends.
type BadAnswerError struct {
	// Request is the method and URL (no query); Start the answer's first bytes, redacted.
	Request, ContentType, Start string
	Status                      int
}

func (e *BadAnswerError) Error() string {
	what := "is not valid JSON"
	if mt, _, _ := mime.ParseMediaType(e.ContentType); mt == "application/json" {
		what = "is JSON that is cut short or malformed"
	}
	return fmt.Sprintf("the answer to %s (HTTP %d, Content-Type %s, starting %q) %s, which GitLab's API never sends: check that --gitlab-url is your GitLab instance and that no proxy answers in its place", e.Request, e.Status, e.ContentType, e.Start, what)
}

// OffBaseError is a request the client refused to send: to another scheme or host than the
// configured GitLab URL, or over plain http to a host that is not loopback.
type OffBaseError struct {
	URL, Base string
	PlainHTTP bool
}

func (e *OffBaseError) Error() string {
	if e.PlainHTTP {
		return fmt.Sprintf("refused to send a request to %s over plain http, which would carry the access token unencrypted: use an https --gitlab-url, or pass --insecure-http if you really mean it", e.URL)
	}
	return fmt.Sprintf("refused to send a request to %s, which is not the configured GitLab %s: the access token only goes there; set --gitlab-url to the instance the server's answers point to if that is your GitLab", e.URL, e.Base)
}

// backoff honours Retry-After and RateLimit-Reset on 429 (bounded by max), and waits
// linearly longer on 5xx, with jitter so parallel jobs do not retry in step.
func backoff(max time.Duration) retryablehttp.Backoff {
	return func(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
		jitter := time.Duration(rand.Int64N(int64(200 * time.Millisecond)))
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			wait := time.Duration(0)
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
				wait = time.Duration(s) * time.Second
			} else if reset, err := strconv.ParseInt(resp.Header.Get("RateLimit-Reset"), 10, 64); err == nil && reset > 0 {
				wait = time.Until(time.Unix(reset, 0))
			} else {
				wait = minWait << attempt
			}
			if wait > max {
				wait = max
			}
			return wait + jitter
		}
		return time.Duration(attempt+1)*700*time.Millisecond + jitter
	}
}

// logTransport logs each request at debug level: method, path, status and duration. It never
// logs headers or bodies, so neither the access token nor a runner token can reach the log.
type logTransport struct {
	next http.RoundTripper
	log  logrus.FieldLogger
}

func (t *logTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	f := t.log.WithField("method", r.Method).WithField("path", r.URL.Path).WithField("ms", time.Since(start).Milliseconds())
	if err != nil {
		f.WithField("error", rootCause(err)).Debug("gitlab request failed")
		return nil, err
	}
	f = f.WithField("status", resp.StatusCode)
	if resp.StatusCode == http.StatusTooManyRequests {
		f.WithField("retry_after", resp.Header.Get("Retry-After")).Warn("gitlab rate limit reached; waiting")
	} else {
		f.Debug("gitlab request")
	}
	return resp, nil
}

// quietLogger routes retryablehttp's own messages to debug level.
type quietLogger struct{ log logrus.FieldLogger }

func (q quietLogger) Error(msg string, kv ...any) { q.log.Debug(strings.ToLower(msg)) }
func (q quietLogger) Info(msg string, kv ...any)  {}
func (q quietLogger) Debug(msg string, kv ...any) {}
func (q quietLogger) Warn(msg string, kv ...any)  { q.log.Debug(strings.ToLower(msg)) }

// Calls is how many API calls the client made: each request once however often it was
// retried, each page of a list once.
func (c *Client) Calls() int64 { return c.calls.Load() }

// idem is the request options of an idempotent call (GET, PUT, DELETE): besides 429 and 5xx,
// it is retried after any failure without an answer (a dropped connection, a request timeout),
// because repeating it cannot do anything twice. client-go itself retries only errors it knows
// happened before the request was sent, since it cannot tell the method without a response.
func (c *Client) idem(ctx context.Context) []gl.RequestOptionFunc {
	c.calls.Add(1)
	return []gl.RequestOptionFunc{gl.WithContext(withAttempts(ctx)), gl.WithRequestRetry(c.retryIdempotent)}
}

// post is the request options of a call that is not idempotent: client-go's own policy, with
// WithOnlyIdempotentRetries, retries it only after a 429 or an error before it was sent.
func (c *Client) post(ctx context.Context) []gl.RequestOptionFunc {
	c.calls.Add(1)
	return []gl.RequestOptionFunc{gl.WithContext(withAttempts(ctx))}
}

// attemptsKey carries, in one call's request context, how many HTTP attempts the call made:
// the error sentence says "after retries" only when there was more than one.
type attemptsKey struct{}

func withAttempts(ctx context.Context) context.Context {
	return context.WithValue(ctx, attemptsKey{}, new(atomic.Int32))
}

// countAttempt records one attempt of the call r belongs to.
func countAttempt(r *http.Request) {
	if n, ok := r.Context().Value(attemptsKey{}).(*atomic.Int32); ok {
		n.Add(1)
	}
}

// retried reports whether the call the answer resp belongs to was sent more than once.
func retried(resp *http.Response) bool {
	if resp == nil || resp.Request == nil {
		return false
	}
	n, ok := resp.Request.Context().Value(attemptsKey{}).(*atomic.Int32)
	return ok && n.Load() > 1
}

// permanent reports errors that a retry cannot cure: an untrusted or mismatched certificate,
// a host name that does not resolve.
func permanent(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var dns *net.DNSError
	var re *RedirectError
	var ob *OffBaseError
	var ra *RetryAfterError
	var ba *BadAnswerError
	var ng *NotGitLabError
	if errors.As(err, &re) || errors.As(err, &ob) || errors.As(err, &ra) || errors.As(err, &ba) || errors.As(err, &ng) {
		return true
	}
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) ||
		(errors.As(err, &dns) && dns.IsNotFound)
}

func (c *Client) retryIdempotent(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if c.noRetries {
		return false, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return !permanent(err), nil
	}
	code := resp.StatusCode
	return code == http.StatusTooManyRequests || code == 0 || (code >= 500 && code != http.StatusNotImplemented), nil
}

func idString(id int64) string { return strconv.FormatInt(id, 10) }
