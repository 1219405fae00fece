package audit

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/gitlab"
)

// WriteMarkdown writes the report as GitHub/GitLab-flavoured Markdown that fits a merge
// request comment or a job summary. Every value that another user can write (descriptions,
// usernames, paths) is escaped, so it cannot inject markup, links or HTML.
func WriteMarkdown(w io.Writer, rep Report) error {
	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p("# Runner audit: %s", md(rep.Scope.Name()))
	p("")
	p("GitLab %s, %s, %d runners, generated %s.", md(rep.GitLab.Version), edition(rep.GitLab), len(rep.Runners), rep.GeneratedAt.UTC().Format(time.RFC3339))
	p("")
	p("| severity | findings |")
	p("|---|---:|")
	for _, sev := range Severities {
		p("| %s | %d |", sev, rep.Summary.Count(sev))
	}
	p("")
	p("## Findings")
	p("")
	if len(rep.Findings) == 0 {
		p("No findings.")
	} else {
		p("| severity | id | object | finding | fix |")
		p("|---|---|---|---|---|")
		for _, f := range rep.Findings {
			p("| %s | `%s` | %s | %s | %s |", f.Severity, f.ID, md(f.Object), md(f.Message), md(f.Fix))
		}
	}
	p("")
	p("## Runners")
	p("")
	if len(rep.Runners) == 0 {
		p("No runners in scope.")
	} else {
		p("| id | type | owner | description | created | managers | version | last contact | token variable | token expires |")
		p("|---:|---|---|---|---|---|---|---|---|---|")
		for _, r := range rep.Runners {
			p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |", r.ID, md(r.RunnerType), md(r.Owner), md(r.Description),
				md(creation(r)), md(managerList(r)), md(orDash(r.Version)), md(when(r.ContactedAt, "never")), md(variableName(r)), md(expiry(r)))
		}
	}
	if len(rep.Notes) > 0 {
		p("")
		p("## Notes")
		p("")
		for _, n := range rep.Notes {
			p("- %s", md(n))
		}
	}
	return b.Flush()
}

var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "&", "&amp;", "#", `\#`, "~", `\~`,
	"\r\n", " ", "\n", " ", "\r", " ", "://", `:\/\/`,
)

// md escapes text for a Markdown table cell.
func md(s string) string { return mdEscaper.Replace(s) }

func edition(g gitlab.Info) string {
	if g.Enterprise {
		return "Enterprise Edition"
	}
	return "Community Edition"
}

func creation(r Runner) string {
	switch r.CreationMethod {
	case "registration_token":
		return "registration token"
	case "authenticated_user":
		if r.CreatedBy != "" {
			return "created by " + r.CreatedBy
		}
		return "created by a user"
	}
	return "unknown"
}

func managerList(r Runner) string {
	if len(r.Managers) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(r.Managers))
	for _, m := range r.Managers {
		s := m.SystemID
		if m.Version != "" {
			s += " " + m.Version
		}
		if m.Status != "" {
			s += " (" + m.Status + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func when(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

func variableName(r Runner) string {
	if r.Variable != nil {
		return *r.Variable
	}
	if r.Managed {
		return "marked, no variable"
	}
	return "not managed"
}

func expiry(r Runner) string {
	if !r.Managed {
		return "-"
	}
	return when(r.TokenExpiresAt, "never")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
