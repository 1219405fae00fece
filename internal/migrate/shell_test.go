package migrate

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// shown renders lexed words for comparison: a word's text, with « » around its live parts
// (unquoted or double-quoted text, where the shell expands) that hold an expansion, and
// operators as themselves.
func shown(ws []word) string {
	var out []string
	for _, w := range ws {
		if w.op != "" {
			out = append(out, w.op)
			continue
		}
		var b strings.Builder
		for _, s := range w.segs {
			if s.live && strings.ContainsAny(s.text, "$`") {
				b.WriteString("«" + s.text + "»")
			} else {
				b.WriteString(s.text)
			}
		}
		out = append(out, b.String())
	}
	return strings.Join(out, " | ")
}

// TestLexQuotingRules pins the POSIX quoting rules the register command parser relies on
// (XCU 2.2 Quoting, 2.3 Token Recognition), each case one rule.
func TestLexQuotingRules(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"blanks split words", "a  b\tc", "a | b | c"},
		{"backslash quotes the next character", `a\ b \$X \\`, `a b | $X | \`},
		{"backslash-newline is removed", "ab\\\ncd", "abcd"},
		{"backslash-CRLF is removed", "ab\\\r\ncd", "abcd"},
		{"single quotes keep everything", `'a\b $X "c"'`, `a\b $X "c"`},
		{"double quotes keep blanks", `"a  b"`, "a  b"},
		{"in double quotes a backslash escapes $", `"a\$X"`, "a$X"},
		{"in double quotes a backslash escapes a backquote", "\"a\\`b\"", "a`b"},
		{"in double quotes a backslash escapes a double quote", `"a\"b"`, `a"b`},
		{"in double quotes a backslash escapes a backslash", `"a\\b"`, `a\b`},
		{"in double quotes a backslash before others stays", `"a\b\n"`, `a\b\n`},
		{"in double quotes backslash-newline is removed", "\"a\\\nb\"", "ab"},
		{"quoted parts join one word", `a'b c'"d e"f`, "ab cd ef"},
		{"empty quotes are an empty word", `a '' ""`, "a |  | "},
		{"unquoted $VAR expands", "$X ${Y}z", "«$X» | «${Y}z»"},
		{"double-quoted $VAR expands", `"x$X"`, "«x$X»"},
		{"single-quoted $VAR does not", `'$X'`, "$X"},
		{"a lone $ expands nothing", `"$" a$`, "$ | a$"},
		{"special parameters", `$1 $@ $?`, "«$1» | «$@» | «$?»"},
		{"command substitution is one word", `$(cat "a b") x`, `«$(cat "a b")» | x`},
		{"nested command substitution", `"$(a $(b) "c d")"`, `«$(a $(b) "c d")»`},
		{"backquotes are one word", "`a b`c", "«`a b`c»"},
		{"arithmetic expansion is one word", "$((1 + 2))x", "«$((1 + 2))x»"},
		{"quotes inside a parameter expansion", `${X:-"a b"} c`, `«${X:-"a b"}» | c`},
		{"a comment runs to the end of the line", "a # b c\nd", "a | ; | d"},
		{"a # inside a word is no comment", "a#b", "a#b"},
		{"control operators", "a;b&&c||d|e&f", "a | ; | b | && | c | || | d | | | e | & | f"},
		{"redirections are operators", "a >b 2>>c", "a | > | >>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ws, err := lex(c.in)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(shown(ws), c.want), "lex(%q)", c.in)
		})
	}
}

func TestLexRefusesUnterminatedQuotes(t *testing.T) {
	for _, in := range []string{`a 'b`, `a "b`, "a `b", `a $(b`, `a ${b`, `"$(a"`, `a $((1`} {
		_, err := lex(in)
		assert.Check(t, is.ErrorContains(err, "unterminated"), "lex(%q)", in)
	}
}

// TestQuoteKeepsMeaning: quote writes a word so that a POSIX shell reads back the same text,
// with the same parts expanded.
func TestQuoteKeepsMeaning(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`plain-word_1.2:/x=y,z@%+`, `plain-word_1.2:/x=y,z@%+`},
		{`'a b'`, `'a b'`},
		{`"it's"`, `'it'\''s'`},
		{`'$X'`, `'$X'`},
		{`"$X"`, `"$X"`},
		{`"a b $X"`, `"a b $X"`},
		{`"\$X-$Y"`, `"\$X-$Y"`},
		{`"$X"'"q"'`, `"$X\"q\""`},
		{`$(cat f)`, `"$(cat f)"`},
		{`""`, `''`},
	} {
		ws, err := lex(c.in)
		assert.NilError(t, err)
		assert.Assert(t, is.Len(ws, 1), c.in)
		got := quote(ws[0])
		assert.Check(t, is.Equal(got, c.want), "quote(lex(%q))", c.in)
		back, err := lex(got)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(shown(back), shown(ws)), "%q does not read back as %q", got, c.in)
	}
}
