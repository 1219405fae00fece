package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
)

// HelpCmd prints a command's --help: "runner-bootstrap help create" is "create --help".
type HelpCmd struct {
	Command []string `arg:"" optional:"" help:"The command whose help to show (default: the list of commands)."`
}

// Run re-parses the named command with --help, which prints its help and exits 0.
func (h *HelpCmd) Run(ctx *kong.Context) error {
	if _, err := ctx.Kong.Parse(append(append([]string{}, h.Command...), "--help")); err != nil {
		return fail.Usagef("no help for %q: %v; runner-bootstrap help lists the commands", strings.Join(h.Command, " "), err)
	}
	return nil
}

// CompletionCmd prints the script that makes a shell complete runner-bootstrap's commands,
// flags and enum values. The script calls the binary back with $COMP_LINE set; see Run.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

// completionScripts are posener/complete's hooks (the ones kongplete installs), with the
// binary's absolute path so that completion works whatever PATH the shell has.
var completionScripts = map[string]string{
	"bash": "complete -C %[1]q %[2]s\n",
	"zsh":  "autoload -U +X bashcompinit && bashcompinit\ncomplete -C %[1]q %[2]s\n",
	"fish": `function __complete_%[2]s
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    %[1]q
end
complete -f -c %[2]s -a "(__complete_%[2]s)"
`,
}

// Run implements the command.
func (c *CompletionCmd) Run(app *App) error {
	bin, err := os.Executable()
	if err == nil {
		bin, err = filepath.Abs(bin)
	}
	if err != nil {
		bin = "runner-bootstrap"
	}
	name := strings.TrimSuffix(filepath.Base(bin), ".exe")
	if name == "" || strings.ContainsAny(name, " \t'\"$") {
		name = "runner-bootstrap"
	}
	_, err = fmt.Fprintf(app.Stdout, completionScripts[c.Shell], bin, name)
	return err
}
