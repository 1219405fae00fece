package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/explain"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/readlimit"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/token"
)

// ExplainCmd says what a token or an error message is and what to do.
type ExplainCmd struct {
	Text []string `arg:"" optional:"" help:"An error message, or - to read a token or message from stdin (do not put tokens in arguments)."`
}

// Run implements the command.
func (c *ExplainCmd) Run(app *App) error {
	in := strings.Join(c.Text, " ")
	if in == "" || in == "-" {
		if f, ok := app.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			// Otherwise a bare "runner-bootstrap explain" just seems to hang.
			fmt.Fprintln(app.Stderr, "runner-bootstrap explain: paste the token or error message, then press Ctrl-D (or pass the message as arguments)")
		}
		b, err := readlimit.Read(app.Ctx, "stdin", app.Stdin, readlimit.Stdin)
		if err != nil {
			return err
		}
		in = string(b)
	} else if k := token.Classify(strings.TrimSpace(in)); k != token.Unknown {
		app.Log.Warnf("the argument looks like %s: pass tokens on stdin (echo \"$TOKEN\" | runner-bootstrap explain), arguments are visible to other processes", k)
	}
	if strings.TrimSpace(in) == "" {
		return fail.Usagef("nothing to explain: pass an error message as arguments, or a token or message on stdin")
	}
	app.redactor.Add(strings.TrimSpace(in))
	e := explain.Explain(in)
	return app.Printer().Print(e, func(w io.Writer) {
		line(w, "%s", e.What)
		for i, s := range e.Steps {
			line(w, "%d. %s", i+1, s)
		}
	})
}
