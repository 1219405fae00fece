// Package output prints results as text for people or as one JSON object for scripts, and
// writes dotenv reports for later CI jobs. It is never given a token: results carry ids,
// keys and dates only.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
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
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fail.Usagef("cannot write the dotenv file %s: %v", path, fail.PathCause(err))
	}
	return nil
}
