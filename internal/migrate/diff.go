package migrate

import (
	"regexp"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// diffContext is how many unchanged lines surround each change, as in diff -u.
const diffContext = 3

// tokenLineRE finds values written under the keys that carry tokens, whatever their form.
var tokenLineRE = regexp.MustCompile(`^(\s*-?\s*["']?(?:runnerRegistrationToken|runnerToken|runner-registration-token|runner-token)["']?\s*:\s*)(\S.*)$`)

// Diff returns a unified diff (diff -u style, "--- original" / "+++ migrated") of two files,
// for --dry-run; it is empty when they are equal. Tokens are never shown: a value under
// runnerToken, runnerRegistrationToken, runner-token or runner-registration-token, and any text
// that looks like a GitLab token, appear as their kind.
func Diff(old, new []byte) string {
	a, b := splitLines(string(old)), splitLines(string(new))
	if strings.Join(a, "\n") == strings.Join(b, "\n") {
		return ""
	}
	secrets := tokenLineValues(a, b)
	withNL := func(ls []string) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = l + "\n"
		}
		return out
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: withNL(a), B: withNL(b), FromFile: "original", ToFile: "migrated", Context: diffContext,
	})
	if err != nil {
		return "" // it writes to memory: it does not fail
	}
	// Every line the files contribute starts with ' ', '-' or '+'; only those can hold a token.
	lines := strings.SplitAfter(d, "\n")
	for i, l := range lines {
		if i < 2 || l == "" || strings.HasPrefix(l, "@@") {
			continue
		}
		lines[i] = l[:1] + redactLine(strings.TrimSuffix(l[1:], "\n"), secrets) + "\n"
	}
	return strings.Join(lines, "")
}

// redactLine hides tokens in one line of diff output: the value of a token key, any value
// written under a token key elsewhere in either file, and anything shaped like a token.
func redactLine(line string, secrets []secretValue) string {
	if m := tokenLineRE.FindStringSubmatch(line); m != nil {
		if v := tokenLineValue(m[2]); v != "" {
			return m[1] + "[redacted]"
		}
	}
	return scrubSecrets(line, secrets)
}

// tokenLineValue is the value written after a token key, unquoted; "" when it sets nothing.
func tokenLineValue(raw string) string {
	v := strings.TrimSpace(raw)
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	if v == "" || v == "~" || v == "null" || strings.HasPrefix(v, "#") || isPlaceholder(v) {
		return ""
	}
	return v
}

// tokenLineValues collects the values written under token keys in either file.
func tokenLineValues(files ...[]string) []secretValue {
	var out []secretValue
	for _, lines := range files {
		for _, l := range lines {
			if m := tokenLineRE.FindStringSubmatch(l); m != nil {
				if v := tokenLineValue(m[2]); v != "" {
					out = append(out, secretValue{value: v, kind: "token"})
				}
			}
		}
	}
	return out
}

// splitLines splits text into lines without their endings; a final newline adds no empty line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}
