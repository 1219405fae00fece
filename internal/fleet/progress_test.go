package fleet

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestProgressIsRateLimited: a line at most once a second, and only when another tenth is
// done or ten seconds have passed; none for the last step (the summary follows).
func TestProgressIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableColors: true})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	p := newProgress(l, 100, clock)

	// 100 steps 100 ms apart: 10 s in all. Tenths are crossed every second, so about nine
	// lines, never two within a second.
	for range 100 {
		now = now.Add(100 * time.Millisecond)
		p.step()
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	assert.Check(t, len(lines) >= 8 && len(lines) <= 10, "%d lines:\n%s", len(lines), buf.String())
	assert.Check(t, is.Contains(lines[0], `msg="applied 10 of 100 changes (10%), 10.0/s, about 9s left" progress=10/100`))

	// Slow work: one step every 3 s over 5 steps of 100; no new tenth, so a line only after
	// ten seconds.
	buf.Reset()
	p = newProgress(l, 100, clock)
	for range 5 {
		now = now.Add(3 * time.Second)
		p.step()
	}
	assert.Check(t, is.Equal(strings.Count(buf.String(), "\n"), 1), buf.String())
	assert.Check(t, is.Contains(buf.String(), "progress=4/100"))

	// Fast work: 1000 steps within a second print nothing.
	buf.Reset()
	p = newProgress(l, 1000, clock)
	for range 1000 {
		now = now.Add(time.Millisecond / 2)
		p.step()
	}
	assert.Check(t, is.Equal(buf.String(), ""))
}
