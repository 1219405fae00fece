package gitlabfake

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// response is a buffered response, so a fault can discard it after the action ran.
type response struct {
	status int
	header http.Header
	body   []byte
}

func newResponse() *response { return &response{status: http.StatusOK, header: http.Header{}} }

func (r *response) json(status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	r.status = status
	r.header.Set("Content-Type", "application/json")
	r.body = bytes.TrimRight(buf.Bytes(), "\n")
}

func (r *response) text(status int, contentType, body string) {
	r.status = status
	r.header.Set("Content-Type", contentType)
	r.body = []byte(body)
}

func (r *response) write(w http.ResponseWriter) {
	maps.Copy(w.Header(), r.header)
	if r.status == http.StatusNoContent {
		w.WriteHeader(r.status)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(r.body)))
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

// call is one API request being handled, with the server lock held.
type call struct {
	s     *Server
	r     *http.Request
	args  []string // path parameters, in route order
	route *route
	p     params
	user  *user
	token *accessToken
	resp  *response
}

func (c *call) base() string { return "http://" + c.r.Host }

// message renders {"message": msg} (render_api_error!, not_found!, forbidden!, ...).
func (c *call) message(status int, msg string) {
	c.resp.json(status, map[string]string{"message": msg})
}

// grapeError renders {"error": msg} (Grape's error! and parameter validation).
func (c *call) grapeError(status int, msg string) {
	c.resp.json(status, map[string]string{"error": msg})
}

func (c *call) notFound(what string) { c.message(http.StatusNotFound, "404 "+what+" Not Found") }

func (c *call) forbidden(reason string) {
	if reason == "" {
		c.message(http.StatusForbidden, "403 Forbidden")
		return
	}
	c.message(http.StatusForbidden, "403 Forbidden - "+reason)
}

func (c *call) badRequest(reason string) {
	c.message(http.StatusBadRequest, "400 Bad request - "+reason)
}

func (c *call) validationError(e *fieldErrors) {
	c.resp.json(http.StatusBadRequest, map[string]any{"message": e})
}

func (c *call) noContent() {
	c.resp.status = http.StatusNoContent
	c.resp.body = nil
}

// fieldErrors is an ActiveModel::Errors hash; keys keep their insertion order, as
// Ruby hashes do.
type fieldErrors struct {
	keys []string
	msgs map[string][]string
}

func (e *fieldErrors) add(attr, msg string) {
	if e.msgs == nil {
		e.msgs = map[string][]string{}
	}
	if _, ok := e.msgs[attr]; !ok {
		e.keys = append(e.keys, attr)
	}
	e.msgs[attr] = append(e.msgs[attr], msg)
}

func (e *fieldErrors) any() bool { return len(e.keys) > 0 }

func (e *fieldErrors) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range e.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(e.msgs[k])
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// fullMessages is ActiveModel's full_messages: "<Humanized attr> <msg>".
func (e *fieldErrors) fullMessages() []string {
	var out []string
	for _, k := range e.keys {
		for _, m := range e.msgs[k] {
			if k == "base" {
				out = append(out, m)
				continue
			}
			h := strings.ReplaceAll(k, "_", " ")
			out = append(out, strings.ToUpper(h[:1])+h[1:]+" "+m)
		}
	}
	return out
}

// toSentence is Rails' Array#to_sentence with the default English connectors
// (", " between words, " and " for two, ", and " before the last of three or more).
func toSentence(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	case 2:
		return items[0] + " and " + items[1]
	}
	return strings.Join(items[:len(items)-1], ", ") + ", and " + items[len(items)-1]
}

// timeJSON formats a time as GitLab does: UTC ISO-8601 with milliseconds.
func timeJSON(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func timePtrJSON(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timeJSON(*t)
	return &s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func pathUnescape(s string) (string, error) { return url.PathUnescape(s) }

func strPtrOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// paginate applies page/per_page to items and sets GitLab's pagination headers.
func paginate[T any](c *call, pg page, items []T) []T {
	total := len(items)
	totalPages := max((total+pg.perPage-1)/pg.perPage, 1)
	start := min((pg.page-1)*pg.perPage, total)
	end := min(start+pg.perPage, total)
	h := c.resp.header
	h.Set("X-Page", strconv.Itoa(pg.page))
	h.Set("X-Per-Page", strconv.Itoa(pg.perPage))
	next, prev := "", ""
	if pg.page < totalPages {
		next = strconv.Itoa(pg.page + 1)
	}
	if pg.page > 1 {
		prev = strconv.Itoa(pg.page - 1)
	}
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)
	// GitLab drops the counts (and rel="last") above 10,000 records.
	counted := total <= 10000
	if counted {
		h.Set("X-Total", strconv.Itoa(total))
		h.Set("X-Total-Pages", strconv.Itoa(totalPages))
	}
	var links []string
	if prev != "" {
		links = append(links, "<"+pageURL(c, pg.page-1, pg.perPage)+`>; rel="prev"`)
	}
	if next != "" {
		links = append(links, "<"+pageURL(c, pg.page+1, pg.perPage)+`>; rel="next"`)
	}
	links = append(links, "<"+pageURL(c, 1, pg.perPage)+`>; rel="first"`)
	if counted {
		links = append(links, "<"+pageURL(c, totalPages, pg.perPage)+`>; rel="last"`)
	}
	h.Set("Link", strings.Join(links, ", "))
	return items[start:end]
}

func pageURL(c *call, page, perPage int) string {
	q := c.r.URL.Query()
	// Never echo credentials into a Link header.
	q.Del("private_token")
	q.Del("access_token")
	q.Set("page", strconv.Itoa(page))
	q.Set("per_page", strconv.Itoa(perPage))
	return c.base() + c.r.URL.EscapedPath() + "?" + q.Encode()
}
