package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func logger(w *bytes.Buffer) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(w)
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableColors: true})
	return l
}

// TestLines: without a terminal, one log line per item with its count, failures included.
func TestLines(t *testing.T) {
	var buf bytes.Buffer
	tk := Start(Options{Out: &buf, Log: logger(&buf)}, "rotate_all", "rotating 2 variables", 2)
	tk.Done("project a variable X", "rotated")
	tk.Failed("project b variable X", "GitLab answered 500")
	tk.Finish()
	assert.Check(t, is.Equal(buf.String(), `level=info msg="rotating 2 variables"
level=info msg="project a variable X: rotated" progress=1/2
level=error msg="project b variable X: GitLab answered 500" progress=2/2
`))
}

// TestSections: in a GitLab CI job the lines sit between section_start and section_end
// markers in GitLab's exact format, collapsed when there are many.
func TestSections(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1700000000, 0)
	tk := Start(Options{Out: &buf, Log: logger(&buf), Sections: true, Now: func() time.Time { return now }}, "Apply fleet.yaml", "applying 11 changes", 11)
	tk.Done("fleet.yaml:3", "created")
	now = now.Add(5 * time.Second)
	tk.Finish()
	tk.Finish()
	assert.Check(t, is.Equal(buf.String(), "\x1b[0Ksection_start:1700000000:apply_fleet.yaml[collapsed=true]\r\x1b[0Kapplying 11 changes\n"+
		"level=info msg=\"fleet.yaml:3: created\" progress=1/11\n"+
		"\x1b[0Ksection_end:1700000005:apply_fleet.yaml\r\x1b[0K\n"))

	buf.Reset()
	tk = Start(Options{Out: &buf, Log: logger(&buf), Sections: true, Now: func() time.Time { return now }}, "prune", "pruning", 0)
	tk.Done("runner 7", "deleted")
	tk.Finish()
	assert.Check(t, is.Contains(buf.String(), "section_start:1700000005:prune\r"), "few items: not collapsed")
	assert.Check(t, is.Contains(buf.String(), `msg="runner 7: deleted" progress=1`+"\n"))
}

// TestBar: on a terminal the items move a bar instead of printing lines; a failure is still
// written out, and the bar is cleared at the end.
func TestBar(t *testing.T) {
	var out, logs bytes.Buffer
	tk := Start(Options{Out: &out, Log: logger(&logs), Bar: true}, "rotate_all", "rotating", 3)
	tk.Done("a", "rotated")
	tk.Failed("b", "boom")
	tk.Done("c", "skipped")
	tk.Finish()
	assert.Check(t, is.Equal(logs.String(), "level=error msg=\"b: boom\"\n"), "only the failure is a log line")
	assert.Check(t, is.Contains(out.String(), "rotating"))
	assert.Check(t, is.Contains(out.String(), "(0/3"), "blank bar first")
	assert.Check(t, !strings.Contains(out.String(), "msg="))
}

// TestFor: the choice of bar and sections from the environment.
func TestFor(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	var buf bytes.Buffer
	o := For(&buf, env(map[string]string{"GITLAB_CI": "true", "CI": "true"}), nil, "text")
	assert.Check(t, o.Sections && !o.Bar)
	o = For(&buf, env(map[string]string{"GITLAB_CI": "true"}), nil, "json")
	assert.Check(t, !o.Sections, "section markers would break a JSON log stream")
	o = For(os.Stderr, env(nil), nil, "text")
	assert.Check(t, !o.Sections)
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	assert.NilError(t, err)
	defer f.Close()
	assert.Check(t, !For(f, env(nil), nil, "text").Bar, "a file is not a terminal")
}
