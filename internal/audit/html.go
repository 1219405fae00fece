package audit

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/duration"
)

// The HTML report is one self-contained page: inline CSS, an inline SVG chart, no script,
// no external style, font or image, so it opens from a job artifact offline and reads the
// same without JavaScript. html/template escapes every value another user can write.
//
//go:embed report.html.tmpl
var reportTemplate string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"when":        when,
	"creation":    creation,
	"variable":    variableName,
	"expiry":      expiry,
	"orDash":      orDash,
	"add":         func(a, b float64) float64 { return a + b },
	"subtract":    func(a float64, b int) float64 { return a - float64(b) },
	"addInt":      func(a, b int) int { return a + b },
	"subtractInt": func(a, b int) int { return a - b },
}).Parse(reportTemplate))

type htmlView struct {
	Report
	Version  string
	Edition  string
	Counts   []sevCount
	Timeline timeline
}

type sevCount struct {
	Severity Severity
	Count    int
}

// timeline is the token-expiry chart of managed runners, laid out in SVG user units.
type timeline struct {
	Width, Height int
	Left, Right   int
	NowX          float64
	WarnX         float64
	Top, Bottom   int
	// Derived positions, so the template does no arithmetic.
	PastWidth, WindowWidth float64
	PlotHeight, TickY      int
	NowTop, NowLabelY      int
	Ticks                  []tick
	Points                 []point
	// Never lists managed runners whose token never expires (not on the axis).
	Never []string
}

type tick struct {
	X     float64
	Label string
}

type point struct {
	X, Y    float64
	LabelX  float64
	LabelY  float64
	Label   string
	State   string // expired, soon, ok, stale
	Tooltip string
}

const (
	chartWidth = 960
	rowHeight  = 26
	chartLeft  = 150
	chartRight = 40
	chartTop   = 34
)

// WriteHTML writes the report as one self-contained HTML page.
func WriteHTML(w io.Writer, rep Report) error {
	v := htmlView{Report: rep, Version: rep.GitLab.Version, Edition: edition(rep.GitLab)}
	for _, sev := range Severities {
		v.Counts = append(v.Counts, sevCount{sev, rep.Summary.Count(sev)})
	}
	warn, err := duration.Parse("warn_within", rep.WarnWithin)
	if err != nil || warn <= 0 {
		warn = 7 * 24 * time.Hour
	}
	v.Timeline = layoutTimeline(rep, warn)
	if err := htmlTemplate.Execute(w, v); err != nil {
		return fmt.Errorf("render the HTML report: %w", err)
	}
	return nil
}

func layoutTimeline(rep Report, warn time.Duration) timeline {
	now := rep.GeneratedAt
	type entry struct {
		label string
		exp   time.Time
		stale bool
	}
	// A stored token known to be dead is drawn as such, whatever its expiry says.
	stale := map[int64]bool{}
	for _, f := range rep.Findings {
		if f.ID == IDTokenStale {
			stale[f.RunnerID] = true
		}
	}
	var es []entry
	tl := timeline{Width: chartWidth, Left: chartLeft, Right: chartWidth - chartRight, Top: chartTop}
	for _, r := range rep.Runners {
		if !r.Managed {
			continue
		}
		label := fmt.Sprintf("runner %d", r.ID)
		if r.TokenExpiresAt == nil {
			tl.Never = append(tl.Never, label)
			continue
		}
		es = append(es, entry{label, *r.TokenExpiresAt, stale[r.ID]})
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].exp.Before(es[j].exp) })
	start, end := now.Add(-warn/2), now.Add(2*warn)
	for _, e := range es {
		if e.exp.Before(start) {
			start = e.exp
		}
		if e.exp.After(end) {
			end = e.exp
		}
	}
	pad := end.Sub(start) / 20
	start, end = start.Add(-pad), end.Add(pad)
	span := float64(end.Sub(start))
	x := func(t time.Time) float64 {
		return float64(tl.Left) + float64(t.Sub(start))/span*float64(tl.Right-tl.Left)
	}
	tl.NowX, tl.WarnX = x(now), x(now.Add(warn))
	tl.Bottom = tl.Top + max(len(es), 1)*rowHeight
	tl.Height = tl.Bottom + 40
	tl.PastWidth, tl.WindowWidth = max(tl.NowX-float64(tl.Left), 0), max(tl.WarnX-tl.NowX, 0)
	tl.PlotHeight, tl.TickY = tl.Bottom-tl.Top, tl.Bottom+18
	tl.NowTop, tl.NowLabelY = tl.Top-8, tl.Top-12
	const ticks = 5
	for i := 0; i <= ticks; i++ {
		t := start.Add(time.Duration(float64(end.Sub(start)) * float64(i) / ticks))
		tl.Ticks = append(tl.Ticks, tick{X: x(t), Label: t.UTC().Format("2006-01-02")})
	}
	for i, e := range es {
		state := "ok"
		switch left := e.exp.Sub(now); {
		case e.stale:
			state = "stale"
		case left <= 0:
			state = "expired"
		case left <= warn:
			state = "soon"
		}
		tip := e.label + ": token expires " + e.exp.UTC().Format(time.RFC3339)
		if e.stale {
			tip += " (the stored copy is stale)"
		}
		px := x(e.exp)
		tl.Points = append(tl.Points, point{X: px, Y: float64(tl.Top + i*rowHeight + rowHeight/2), LabelX: float64(tl.Left - 10), LabelY: float64(tl.Top+i*rowHeight+rowHeight/2) + 4,
			Label: e.label, State: state, Tooltip: tip})
	}
	return tl
}
