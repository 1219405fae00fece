package migrate

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// diffContext is how many unchanged lines surround each change, as in diff -u.
const diffContext = 3

// maxDiffCells bounds the LCS table; larger inputs are shown as one replaced block.
const maxDiffCells = 16 << 20

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
	ops := lineOps(a, b)
	secrets := tokenLineValues(a, b)

	var out strings.Builder
	out.WriteString("--- original\n+++ migrated\n")
	// Group the operations into hunks with diffContext lines around each change.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-diffContext, 0)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			// Look ahead: a run of unchanged lines shorter than two contexts joins the next change.
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run < len(ops) && run-end <= 2*diffContext {
				end = run
				continue
			}
			end = min(end+diffContext, len(ops))
			break
		}
		aStart, bStart, aLen, bLen := ops[start].a, ops[start].b, 0, 0
		for _, op := range ops[start:end] {
			if op.kind != '+' {
				aLen++
			}
			if op.kind != '-' {
				bLen++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		for _, op := range ops[start:end] {
			out.WriteByte(op.kind)
			out.WriteString(redactLine(op.text, secrets))
			out.WriteByte('\n')
		}
		i = end
	}
	return out.String()
}

// hunkRange writes a unified-diff range: the 1-based first line and the count (0-based line
// before an empty range, as diff does).
func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
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

// lineOp is one line of the edit script: ' ' kept, '-' only in a, '+' only in b; a and b are
// the 0-based positions in each file where the line is (or would be).
type lineOp struct {
	kind byte
	text string
	a, b int
}

// lineOps computes an edit script from a to b through a longest common subsequence of lines.
func lineOps(a, b []string) []lineOp {
	// Common prefix and suffix cost nothing and keep the table small.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]

	var ops []lineOp
	for i := 0; i < pre; i++ {
		ops = append(ops, lineOp{' ', a[i], i, i})
	}
	n, m := len(ma), len(mb)
	if n*m > maxDiffCells {
		for i, s := range ma {
			ops = append(ops, lineOp{'-', s, pre + i, pre})
		}
		for j, s := range mb {
			ops = append(ops, lineOp{'+', s, pre + n, pre + j})
		}
	} else {
		// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
		lcs := make([][]int32, n+1)
		for i := range lcs {
			lcs[i] = make([]int32, m+1)
		}
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ma[i] == mb[j]:
				ops = append(ops, lineOp{' ', ma[i], pre + i, pre + j})
				i++
				j++
			case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
				ops = append(ops, lineOp{'+', mb[j], pre + i, pre + j})
				j++
			default:
				ops = append(ops, lineOp{'-', ma[i], pre + i, pre + j})
				i++
			}
		}
	}
	for k := 0; k < suf; k++ {
		ia, ib := len(a)-suf+k, len(b)-suf+k
		ops = append(ops, lineOp{' ', a[ia], ia, ib})
	}
	// Within each change, removed lines come before added ones, as diff -u shows them.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		j := i
		for j < len(ops) && ops[j].kind != ' ' {
			j++
		}
		sort.SliceStable(ops[i:j], func(x, y int) bool { return ops[i+x].kind == '-' && ops[i+y].kind == '+' })
		i = j
	}
	ai, bi := 0, 0
	for k := range ops {
		ops[k].a, ops[k].b = ai, bi
		if ops[k].kind != '+' {
			ai++
		}
		if ops[k].kind != '-' {
			bi++
		}
	}
	return ops
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
