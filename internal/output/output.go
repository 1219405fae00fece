// Package output prints results as text for people or as one JSON object for scripts, and
// writes dotenv reports for later CI jobs. It is never given a token: results carry ids,
// keys and dates only.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/safefile"
)

// Format is text or json.
type Format string

// Formats.
const (
	Text Format = "text"
	JSON Format = "json"
)

// Printer writes command results to stdout.
type Printer struct {
	W      io.Writer
	Format Format
}

// Print writes v as one JSON object, or calls text to write lines for a person.
func (p Printer) Print(v any, text func(w io.Writer)) error {
	if p.Format == JSON {
		enc := json.NewEncoder(p.W)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(p.W)
	return nil
}

// Facts flattens v's JSON form into dotenv lines, so a dotenv report carries the same facts
// as -o json: each field becomes PREFIX_FIELD (a nested object's fields PREFIX_FIELD_SUB),
// null is empty, a list of numbers is joined with commas and a list of sentences with "; ".
func Facts(prefix string, v any) (map[string]string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	out := map[string]string{}
	flatten(out, prefix, m)
	return out, nil
}

func flatten(out map[string]string, prefix string, m map[string]any) {
	for k, v := range m {
		key := prefix + "_" + strings.ToUpper(k)
		switch x := v.(type) {
		case map[string]any:
			flatten(out, key, x)
		case []any:
			parts := make([]string, 0, len(x))
			sep := ","
			for _, e := range x {
				if _, ok := e.(string); ok {
					sep = "; "
				}
				parts = append(parts, scalar(e))
			}
			out[key] = strings.Join(parts, sep)
		default:
			out[key] = scalar(x)
		}
	}
}

// scalar writes one JSON value on one line.
func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strings.Join(strings.Fields(x), " ")
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b)
	default:
		return fmt.Sprint(x)
	}
}

// Plural is "1 entry" or "3 entries": a count with the right form of its noun.
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

var dotenvKeyRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// WriteDotenv writes KEY=value lines (sorted) to path, for a GitLab artifacts:reports:dotenv.
// Values must be single-line; the file is created 0644 because it holds no secret.
func WriteDotenv(path string, vars map[string]string) error {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		if !dotenvKeyRE.MatchString(k) {
			return fmt.Errorf("write dotenv %s: invalid key %q", path, k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v := vars[k]
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("write dotenv %s: value of %s spans lines", path, k)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return safefile.Write("--dotenv", path, []byte(b.String()), safefile.Public)
}
