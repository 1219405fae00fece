package gitlabfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// params are the request parameters merged as Grape does: query string, then form
// body, then JSON body, later sources winning. Values are string, bool, json.Number,
// nil, []any or map[string]any.
type params map[string]any

var errBadBody = errors.New("message body does not match declared format")

func parseParams(r *http.Request, body []byte) (params, error) {
	p := params{}
	mergeValues(p, r.URL.Query())
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	trimmed := bytes.TrimSpace(body)
	switch {
	case ct == "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errBadBody
		}
		mergeValues(p, v)
	case ct == "multipart/form-data":
		r.Body = http.NoBody
		if err := parseMultipart(r, body, p); err != nil {
			return nil, errBadBody
		}
	case len(trimmed) > 0 && (ct == "application/json" || ct == "" || strings.HasSuffix(ct, "+json")):
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, errBadBody
		}
		if m, ok := v.(map[string]any); ok {
			maps.Copy(p, m)
		}
	}
	return p, nil
}

func parseMultipart(r *http.Request, body []byte, p params) error {
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	if err := req.ParseMultipartForm(8 << 20); err != nil {
		return err
	}
	mergeValues(p, url.Values(req.MultipartForm.Value))
	return nil
}

// mergeValues turns Rack-style keys into nested values: a[]=1&a[]=2 is a list and
// filter[environment_scope]=x a hash. A repeated plain key keeps the last value.
func mergeValues(p params, v url.Values) {
	for rawKey, vals := range v {
		base, rest := rawKey, ""
		if i := strings.IndexByte(rawKey, '['); i > 0 {
			base, rest = rawKey[:i], rawKey[i:]
		}
		var subs []string
		for strings.HasPrefix(rest, "[") {
			j := strings.IndexByte(rest, ']')
			if j < 0 {
				break
			}
			subs = append(subs, rest[1:j])
			rest = rest[j+1:]
		}
		setNested(map[string]any(p), base, subs, vals)
	}
}

func setNested(m map[string]any, key string, subs []string, vals []string) {
	if len(subs) == 0 {
		m[key] = vals[len(vals)-1]
		return
	}
	if subs[0] == "" {
		list, _ := m[key].([]any)
		for _, v := range vals {
			list = append(list, v)
		}
		m[key] = list
		return
	}
	child, ok := m[key].(map[string]any)
	if !ok {
		child = map[string]any{}
		m[key] = child
	}
	setNested(child, subs[0], subs[1:], vals)
}

// validator checks and coerces params the way Grape does, collecting messages such
// as "group_id is missing" that Grape joins with ", " into {"error": ...}.
type validator struct {
	p    params
	errs []string
}

func (v *validator) fail(msg string) { v.errs = append(v.errs, msg) }

func (v *validator) failed() bool { return len(v.errs) > 0 }

func (v *validator) message() string { return strings.Join(v.errs, ", ") }

func (v *validator) has(name string) bool {
	_, ok := v.p[name]
	return ok
}

// str returns a String param. Numbers and booleans coerce; lists and hashes are invalid.
func (v *validator) str(name string) (string, bool) {
	raw, ok := v.p[name]
	if !ok {
		return "", false
	}
	s, ok := coerceString(raw)
	if !ok {
		v.fail(name + " is invalid")
		return "", false
	}
	return s, true
}

func coerceString(raw any) (string, bool) {
	switch x := raw.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func (v *validator) requireStr(name string) (string, bool) {
	if !v.has(name) {
		v.fail(name + " is missing")
		return "", false
	}
	return v.str(name)
}

// values is a String param limited to a set (Grape `values:`).
func (v *validator) values(name string, required bool, allowed ...string) (string, bool) {
	if !v.has(name) {
		if required {
			v.fail(name + " is missing")
			v.fail(name + " does not have a valid value")
		}
		return "", false
	}
	s, ok := v.str(name)
	if !ok {
		return "", false
	}
	if slices.Contains(allowed, s) {
		return s, true
	}
	v.fail(name + " does not have a valid value")
	return "", false
}

// boolean is a Grape Boolean: JSON booleans and the usual strings.
func (v *validator) boolean(name string) *bool {
	raw, ok := v.p[name]
	if !ok {
		return nil
	}
	b, ok := coerceBool(raw)
	if !ok {
		v.fail(name + " is invalid")
		return nil
	}
	return &b
}

func coerceBool(raw any) (bool, bool) {
	switch x := raw.(type) {
	case bool:
		return x, true
	case json.Number:
		switch x.String() {
		case "1":
			return true, true
		case "0":
			return false, true
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "t", "1", "yes", "y", "on":
			return true, true
		case "false", "f", "0", "no", "n", "off":
			return false, true
		}
	}
	return false, false
}

// integer is a Grape Integer. present reports that the param was sent; null is
// reported as present with a nil value.
func (v *validator) integer(name string) (val *int64, present bool) {
	raw, ok := v.p[name]
	if !ok {
		return nil, false
	}
	if raw == nil {
		return nil, true
	}
	n, ok := coerceInt(raw)
	if !ok {
		v.fail(name + " is invalid")
		return nil, true
	}
	return &n, true
}

func coerceInt(raw any) (int64, bool) {
	var s string
	switch x := raw.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	default:
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, false
		}
		n = int64(f)
	}
	return n, true
}

func (v *validator) requireInt(name string) *int64 {
	if !v.has(name) {
		v.fail(name + " is missing")
		return nil
	}
	n, _ := v.integer(name)
	return n
}

// tagList is Array[String] with GitLab's CommaSeparatedToArray coercion: a string or
// a list whose items may themselves be comma-separated; blanks and repeats dropped.
func (v *validator) tagList(name string) ([]string, bool) {
	raw, ok := v.p[name]
	if !ok {
		return nil, false
	}
	var items []string
	switch x := raw.(type) {
	case nil:
	case []any:
		for _, it := range x {
			s, ok := coerceString(it)
			if !ok {
				v.fail(name + " is invalid")
				return nil, false
			}
			items = append(items, s)
		}
	default:
		s, ok := coerceString(x)
		if !ok {
			v.fail(name + " is invalid")
			return nil, false
		}
		items = []string{s}
	}
	out := []string{}
	seen := map[string]bool{}
	for _, it := range items {
		for t := range strings.SplitSeq(it, ",") {
			t = strings.TrimSpace(t)
			if t == "" || seen[t] {
				continue
			}
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, true
}

// filterScope reads filter[environment_scope] (query) or {"filter":{...}} (JSON).
func (v *validator) filterScope() *string {
	raw, ok := v.p["filter"]
	if !ok || raw == nil {
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		v.fail("filter is invalid")
		return nil
	}
	sraw, ok := m["environment_scope"]
	if !ok {
		return nil
	}
	s, ok := coerceString(sraw)
	if !ok {
		v.fail("filter[environment_scope] is invalid")
		return nil
	}
	return &s
}

type page struct{ page, perPage int }

// pagination reads page (default 1) and per_page (default 20, clamped to 100).
func (v *validator) pagination() page {
	pg := page{page: 1, perPage: 20}
	if n, present := v.integer("page"); present && n != nil && *n > 0 {
		pg.page = int(min(*n, 1<<30))
	}
	if n, present := v.integer("per_page"); present && n != nil && *n > 0 {
		pg.perPage = int(min(*n, 100))
	}
	return pg
}
