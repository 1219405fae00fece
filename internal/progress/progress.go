// Package progress shows how far a long command is (rotate --all, apply, prune, audit): a
// progress bar when stderr is a terminal, one log line per item everywhere else (CI job logs,
// files), and, in a GitLab CI job, the lines inside one collapsible log section.
//
// Use it from any command:
//
//	t := progress.Start(progress.For(stderr, getenv, log, logFormat), "rotate_all", "Rotating 12 variables", 12)
//	defer t.Finish()
//	t.Done("project platform/deploy variable RUNNER_TOKEN", "rotated")  // from any goroutine
//	t.Failed("group platform variable RUNNER_TOKEN", err.Error())
//
// internal/cli's App.Progress does the For part.
package progress

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/sirupsen/logrus"
	"golang.org/x/term"
)

// Options say where and how progress goes.
type Options struct {
	// Out is the program's stderr: the bar and the section markers go there.
	Out io.Writer
	// Log receives one line per item (and, with a bar, the failures only). It is the program's
	// redacting logger, so an item's message never carries a token to the log.
	Log logrus.FieldLogger
	// Bar draws a progress bar on Out instead of a line per item (Out is a terminal).
	Bar bool
	// Sections wraps the item lines in a GitLab collapsible section (a CI job with text logs).
	Sections bool
	// Now is the clock for the section markers (default time.Now).
	Now func() time.Time
}

// For chooses the options for the program's stderr and environment: a bar on an interactive
// terminal (not in CI, not TERM=dumb), sections in a GitLab CI job whose logs are text
// (section markers would break a JSON log stream).
func For(stderr io.Writer, getenv func(string) string, log logrus.FieldLogger, logFormat string) Options {
	ci := getenv("CI") != "" || getenv("GITLAB_CI") != ""
	o := Options{Out: stderr, Log: log}
	if f, ok := stderr.(*os.File); ok && !ci && getenv("TERM") != "dumb" && term.IsTerminal(int(f.Fd())) {
		o.Bar = true
	}
	o.Sections = getenv("GITLAB_CI") == "true" && logFormat != "json"
	return o
}

// Task is one long piece of work of a known number of items (or, with total 0, an unknown one).
// Its methods may be called from several goroutines.
type Task struct {
	o     Options
	name  string
	total int

	mu   sync.Mutex
	done int
	bar  *progressbar.ProgressBar
	end  bool
}

var sectionName = regexp.MustCompile(`[^a-z0-9_.-]+`)

// Start begins a task: it opens the section (or draws the empty bar). name identifies the
// section in the job log (letters, digits, _ . -); title is what a person reads.
func Start(o Options, name, title string, total int) *Task {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Log = l
	}
	t := &Task{o: o, name: sectionName.ReplaceAllString(strings.ToLower(name), "_"), total: total}
	if o.Bar {
		max := total
		if max <= 0 {
			max = -1 // a spinner: the number of items is not known in advance
		}
		t.bar = progressbar.NewOptions(max,
			progressbar.OptionSetWriter(o.Out),
			progressbar.OptionSetDescription(title),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
		)
		_ = t.bar.RenderBlank()
		return t
	}
	if o.Sections {
		collapsed := ""
		if total > 10 {
			collapsed = "[collapsed=true]"
		}
		// GitLab's format: ESC[0K section_start:UNIX:NAME[options] CR ESC[0K header.
		fmt.Fprintf(o.Out, "\x1b[0Ksection_start:%d:%s%s\r\x1b[0K%s\n", o.Now().Unix(), t.name, collapsed, title)
	} else {
		o.Log.Info(title)
	}
	return t
}

// Done counts one item as finished and says how it ended (one line, or one step of the bar).
func (t *Task) Done(item, result string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done++
	if t.bar != nil {
		_ = t.bar.Add(1)
		return
	}
	t.o.Log.WithField("progress", t.count()).Infof("%s: %s", item, result)
}

// Failed counts one item as finished with a failure; it is shown with a bar too.
func (t *Task) Failed(item, msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done++
	if t.bar != nil {
		// The bar owns the line: clear it, write the failure above, and let it redraw.
		_ = t.bar.Clear()
		t.o.Log.Errorf("%s: %s", item, msg)
		_ = t.bar.Add(1)
		return
	}
	t.o.Log.WithField("progress", t.count()).Errorf("%s: %s", item, msg)
}

// Finish removes the bar or closes the section. It may be called more than once.
func (t *Task) Finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.end {
		return
	}
	t.end = true
	switch {
	case t.bar != nil:
		_ = t.bar.Finish()
	case t.o.Sections:
		fmt.Fprintf(t.o.Out, "\x1b[0Ksection_end:%d:%s\r\x1b[0K\n", t.o.Now().Unix(), t.name)
	}
}

// count is "3/10", or "3" when the total is not known.
func (t *Task) count() string {
	if t.total <= 0 {
		return fmt.Sprint(t.done)
	}
	return fmt.Sprintf("%d/%d", t.done, t.total)
}

// Quieter is the logger for the work of each item while a Task reports progress: the item's
// own info lines ("created runner …") would repeat the progress line, and flood a log for a
// thousand items, so they show at debug level only; warnings and errors always show. Output,
// formatter and hooks are l's, so the same redaction applies.
func Quieter(l *logrus.Logger) *logrus.Logger {
	q := logrus.New()
	q.SetOutput(l.Out)
	q.SetFormatter(l.Formatter)
	q.ReplaceHooks(l.Hooks)
	lvl := logrus.WarnLevel
	if l.IsLevelEnabled(logrus.DebugLevel) || !l.IsLevelEnabled(logrus.WarnLevel) {
		lvl = l.GetLevel()
	}
	q.SetLevel(lvl)
	return q
}
