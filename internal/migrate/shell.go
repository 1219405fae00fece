package migrate

import (
	"errors"
	"regexp"
	"strings"

	"mvdan.cc/sh/v3/syntax"

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
// mvdan.cc/sh parses it (quotes, backslashes, continuations, $(…), ${…}, `…`, $((…)), comments),
// and each word comes back as segments that say which text the shell would expand. Control
// and redirection operators come back as words with op set, in the order they stand.
func lex(s string) ([]word, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(s), "")
	if err != nil {
		return nil, parseError(err)
	}
	l := lexer{src: s}
	for i, st := range f.Stmts {
		if i > 0 && !f.Stmts[i-1].Background {
			l.op(";") // or a newline: the register parser takes both alike
		}
		if err := l.stmt(st); err != nil {
			return nil, err
		}
	}
	return l.words, nil
}

// lexer turns a parsed command line back into words.
type lexer struct {
	src   string
	words []word
}

func (l *lexer) op(op string) { l.words = append(l.words, word{op: op}) }

func (l *lexer) stmt(st *syntax.Stmt) error {
	if st.Negated {
		l.words = append(l.words, literal("!"))
	}
	if err := l.command(st.Cmd); err != nil {
		return err
	}
	for _, r := range st.Redirs {
		l.op(r.Op.String())
	}
	if st.Background {
		l.op("&")
	}
	return nil
}

func (l *lexer) command(c syntax.Command) error {
	switch c := c.(type) {
	case *syntax.CallExpr:
		for _, a := range c.Assigns {
			if a.Name == nil || a.Append || a.Naked || a.Index != nil || a.Array != nil {
				return fail.Usagef("the command line has an assignment this parser does not take (%s): expected NAME=value", show(l.source(a)))
			}
			w := word{segs: []segment{{text: a.Name.Value + "=", live: true}}}
			if a.Value != nil {
				v, err := l.word(a.Value)
				if err != nil {
					return err
				}
				w.segs = append(w.segs, v.segs...)
			}
			l.words = append(l.words, w)
		}
		for _, a := range c.Args {
			w, err := l.word(a)
			if err != nil {
				return err
			}
			l.words = append(l.words, w)
		}
		return nil
	case *syntax.BinaryCmd:
		if err := l.stmt(c.X); err != nil {
			return err
		}
		l.op(c.Op.String())
		return l.stmt(c.Y)
	case *syntax.Subshell:
		l.op("(")
		return nil
	case *syntax.Block:
		l.op("{")
		return nil
	}
	return fail.Usagef("the command line uses a shell compound command (%s), which is not supported here: expected one gitlab-runner register command", show(l.source(c)))
}

// source is the text of n as the user wrote it.
func (l *lexer) source(n syntax.Node) string {
	return l.src[n.Pos().Offset():n.End().Offset()]
}

// word turns a parsed word into segments: literal text (quoted or escaped) and live text
// (unquoted or double-quoted, where the shell expands $ and `).
func (l *lexer) word(w *syntax.Word) (word, error) {
	var out word
	add := func(text string, live bool) {
		if n := len(out.segs); n > 0 && out.segs[n-1].live == live {
			out.segs[n-1].text += text
			return
		}
		out.segs = append(out.segs, segment{text, live})
	}
	var parts func(ps []syntax.WordPart, dquoted bool) error
	parts = func(ps []syntax.WordPart, dquoted bool) error {
		for _, p := range ps {
			switch p := p.(type) {
			case *syntax.Lit:
				unescape(p.Value, dquoted, add)
			case *syntax.SglQuoted:
				if p.Dollar {
					add("$", false) // $'…' is bash's; a POSIX shell reads a $ and a quoted string
				}
				add(p.Value, false)
			case *syntax.DblQuoted:
				if p.Dollar {
					add("$", false)
				}
				if err := parts(p.Parts, true); err != nil {
					return err
				}
			case *syntax.ParamExp, *syntax.CmdSubst, *syntax.ArithmExp:
				add(l.source(p), true)
			default:
				return fail.Usagef("the command line has a shell word this parser does not take (%s): expected plain, quoted or $-expanded words", show(l.source(p)))
			}
		}
		return nil
	}
	if err := parts(w.Parts, false); err != nil {
		return word{}, err
	}
	if len(out.segs) == 0 {
		out.segs = []segment{{}} // '' or "": an empty word, not no word
	}
	return out, nil
}

// unescape adds a literal's text as the shell reads it: a backslash quotes the next character
// (inside double quotes only $ ` " \ and newline); a $ the parser left in a literal expands
// nothing, so it is literal too.
func unescape(v string, dquoted bool, add func(string, bool)) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 == len(v):
			// a trailing backslash continues onto nothing
		case c == '\\' && (!dquoted || strings.IndexByte("$`\"\\\n", v[i+1]) >= 0):
			if v[i+1] != '\n' {
				add(v[i+1:i+2], false)
			}
			i++
		case c == '$':
			add("$", false)
		default:
			add(v[i:i+1], true)
		}
	}
}

// parseError turns the parser's error into one sentence saying what is missing.
func parseError(err error) error {
	if pe, ok := errors.AsType[syntax.ParseError](err); ok {
		// The parser's sentences are pinned with its version in go.mod; TestLexRefusesUnterminatedQuotes
		// notices if a new version words them otherwise.
		for _, q := range []struct{ mvdan, ours string }{
			{"closing quote `\"`", `" quote`}, {"closing quote `'`", "' quote"}, {"closing quote \"`\"", "` quote"},
			{"matching `$((`", "$(("}, {"matching `$(`", "$("}, {"matching `${`", "${"},
		} {
			if strings.Contains(pe.Text, q.mvdan) {
				return fail.Usagef("the command line has an unterminated %s: expected a complete shell command", q.ours)
			}
		}
		return fail.Usagef("the command line is not a shell command this parser reads (%s at line %d, column %d): expected one gitlab-runner register command", pe.Text, pe.Pos.Line(), pe.Pos.Col())
	}
	return fail.Usagef("the command line is not a shell command this parser reads: expected one gitlab-runner register command")
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
