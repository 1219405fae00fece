package migrate

import (
	"regexp"
	"strings"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// segment is a piece of a shell word. live segments came from unquoted or double-quoted text,
// where the shell expands $VAR, $(…) and `…`; other segments are literal.
type segment struct {
	text string
	live bool
}

// word is one shell word after quote removal, or an operator such as ; or &&.
type word struct {
	segs []segment
	op   string
}

func (w word) String() string {
	var b strings.Builder
	for _, s := range w.segs {
		b.WriteString(s.text)
	}
	return b.String()
}

// expands reports whether the shell would expand something in w.
func (w word) expands() bool {
	for _, s := range w.segs {
		if s.live && strings.ContainsAny(s.text, "$`") {
			return true
		}
	}
	return false
}

// cut splits w at the first i bytes of its text, keeping each side's segment kinds.
func (w word) cut(i int) (word, word) {
	var a, b word
	for _, s := range w.segs {
		switch {
		case i <= 0:
			b.segs = append(b.segs, s)
		case i >= len(s.text):
			a.segs = append(a.segs, s)
			i -= len(s.text)
		default:
			a.segs = append(a.segs, segment{s.text[:i], s.live})
			b.segs = append(b.segs, segment{s.text[i:], s.live})
			i = 0
		}
	}
	return a, b
}

func literal(s string) word { return word{segs: []segment{{text: s}}} }

// lex splits a command line into words the way a POSIX shell does, without expanding anything:
// quotes, backslashes, backslash-newline continuations, $(…), ${…}, `…` and # comments.
// Control operators come back as words with op set.
func lex(s string) ([]word, error) {
	var words []word
	var cur word
	inWord := false
	add := func(text string, live bool) {
		inWord = true
		if n := len(cur.segs); n > 0 && cur.segs[n-1].live == live {
			cur.segs[n-1].text += text
			return
		}
		cur.segs = append(cur.segs, segment{text, live})
	}
	flush := func() {
		if inWord {
			words = append(words, cur)
		}
		cur, inWord = word{}, false
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch {
			case strings.HasPrefix(s[i:], "\\\r\n"):
				i += 3
			case i+1 < len(s) && s[i+1] == '\n':
				i += 2
			case i+1 < len(s):
				add(s[i+1:i+2], false)
				i += 2
			default:
				i++ // a lone trailing backslash continues onto nothing
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fail.Usagef("the command line has an unterminated ' quote: expected a complete shell command")
			}
			add(s[i+1:i+1+end], false)
			i += end + 2
		case c == '"':
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fail.Usagef("the command line has an unterminated \" quote: expected a complete shell command")
				}
				d := s[j]
				if d == '"' {
					break
				}
				switch {
				case d == '\\' && j+1 < len(s) && s[j+1] == '\n':
					j += 2
				case d == '\\' && j+1 < len(s) && strings.IndexByte("$`\"\\", s[j+1]) >= 0:
					add(s[j+1:j+2], false)
					j += 2
				case d == '$' || d == '`':
					n, err := expansion(s[j:])
					if err != nil {
						return nil, err
					}
					// A lone $ expands nothing: keep it literal, so that quoting it again next
					// to other text cannot turn it into an expansion.
					add(s[j:j+n], n > 1 || d == '`')
					j += n
				default:
					add(s[j:j+1], true)
					j++
				}
			}
			inWord = true
			i = j + 1
		case c == '$' || c == '`':
			n, err := expansion(s[i:])
			if err != nil {
				return nil, err
			}
			add(s[i:i+n], n > 1 || c == '`')
			i += n
		case c == ' ' || c == '\t' || c == '\r':
			flush()
			i++
		case c == '#' && !inWord:
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.IndexByte(";&|<>()\n", c) >= 0:
			flush()
			op := s[i : i+1]
			if i+1 < len(s) && (s[i:i+2] == "&&" || s[i:i+2] == "||" || s[i:i+2] == ";;" || s[i:i+2] == ">>" || s[i:i+2] == "<<") {
				op = s[i : i+2]
			}
			words = append(words, word{op: op})
			i += len(op)
		default:
			add(s[i:i+1], true)
			i++
		}
	}
	flush()
	return words, nil
}

// expansion returns the length of the $…, ${…}, $(…) or `…` at the start of s.
func expansion(s string) (int, error) {
	if s[0] == '`' {
		for j := 1; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case '`':
				return j + 1, nil
			}
		}
		return 0, fail.Usagef("the command line has an unterminated ` quote: expected a complete shell command")
	}
	if len(s) < 2 {
		return 1, nil
	}
	switch s[1] {
	case '{', '(':
		open, closing := s[1], byte('}')
		if open == '(' {
			closing = ')'
		}
		depth := 0
		var quote byte
		for j := 1; j < len(s); j++ {
			c := s[j]
			switch {
			case quote != 0:
				if c == '\\' && quote == '"' {
					j++
				} else if c == quote {
					quote = 0
				}
			case c == '\\':
				j++
			case c == '\'' || c == '"':
				quote = c
			case c == open:
				depth++
			case c == closing:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fail.Usagef("the command line has an unterminated $%c: expected a complete shell command", open)
	}
	j := 1
	if special := "@*#?$!-0123456789"; strings.IndexByte(special, s[1]) >= 0 {
		return 2, nil
	}
	for j < len(s) && (s[j] == '_' || 'a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z' || '0' <= s[j] && s[j] <= '9') {
		j++
	}
	return j, nil
}

var safeWordRE = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// quote writes w for a POSIX shell so that it means what it meant: literal text in single
// quotes (or bare when safe), and words with expansions in double quotes with those kept live.
func quote(w word) string {
	if !w.expands() {
		s := w.String()
		if safeWordRE.MatchString(s) {
			return s
		}
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, s := range w.segs {
		if s.live {
			// Live text was valid inside double quotes or unquoted, where it has no bare quote
			// or backslash outside its $(…); it keeps its meaning between double quotes.
			b.WriteString(s.text)
			continue
		}
		for _, r := range s.text {
			if strings.ContainsRune("$`\"\\", r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
