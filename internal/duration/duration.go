// Package duration is the one duration type of runner-bootstrap's flags and manifests: Go's
// durations (90m, 72h) plus whole days (7d, 30d, 1d12h), never negative.
package duration

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// Day is 24 hours: token expiries and contact ages are counted in calendar-free days.
const Day = 24 * time.Hour

// Duration is a non-negative time.Duration that also reads days. Its zero value means "not
// given" wherever a flag treats it as optional.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes whole days as days (168h is 7d, 36h is 1d12h) and shorter spans as Go does.
func (d Duration) String() string {
	td := time.Duration(d)
	if td < Day {
		return td.String()
	}
	days := td / Day
	rest := td - days*Day
	if rest == 0 {
		return strconv.FormatInt(int64(days), 10) + "d"
	}
	return strconv.FormatInt(int64(days), 10) + "d" + compact(rest)
}

// compact is Go's format without trailing zero units: 12h rather than 12h0m0s.
func compact(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Error is a duration that could not be read; it names the flag or key it was given for, so
// the message is one sentence without the parser's own prefix.
type Error struct {
	// Name is "--warn-within" or a manifest key.
	Name  string
	Value string
	// Negative says the value parsed but is below zero.
	Negative bool
}

func (e *Error) Error() string {
	if e.Negative {
		return fmt.Sprintf("%s %s is negative: expected a duration such as 72h or 7d", e.Name, e.Value)
	}
	return fmt.Sprintf("%s %q is not a duration: expected a number with a unit, such as 90m, 72h or 7d (d is 24 hours)", e.Name, e.Value)
}

// Parse reads a Go duration, optionally led by whole days: "7d", "30d", "1d12h", "72h",
// "90m". Negative values are refused.
func Parse(name, s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	neg := strings.HasPrefix(in, "-")
	body := strings.TrimPrefix(strings.TrimPrefix(in, "-"), "+")
	var total time.Duration
	if i := strings.IndexByte(body, 'd'); i > 0 {
		n, err := strconv.ParseInt(body[:i], 10, 32)
		if err != nil {
			return 0, &Error{Name: name, Value: s}
		}
		total = time.Duration(n) * Day
		body = body[i+1:]
	}
	if body != "" {
		d, err := time.ParseDuration(body)
		if err != nil || strings.HasPrefix(body, "-") || strings.HasPrefix(body, "+") {
			return 0, &Error{Name: name, Value: s}
		}
		total += d
	} else if total == 0 && !strings.HasSuffix(in, "d") {
		return 0, &Error{Name: name, Value: s}
	}
	if neg && total != 0 {
		return 0, &Error{Name: name, Value: s, Negative: true}
	}
	return total, nil
}

// UnmarshalText reads the value from YAML or a flag default.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := Parse("duration", string(b))
	*d = Duration(v)
	return err
}

// MarshalText writes the value as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Decode implements kong.MapperValue. A value that starts with "-" and a digit is taken as a
// (negative) duration rather than as a flag, so that --warn-within -1h gets its own sentence
// instead of the parser's "expected a value" hint.
func (d *Duration) Decode(ctx *kong.DecodeContext) error {
	name := "--" + ctx.Value.Name
	t := ctx.Scan.Peek()
	if s, ok := t.Value.(string); ok && len(s) > 1 && s[0] == '-' && s[1] >= '0' && s[1] <= '9' {
		ctx.Scan.Pop()
		_, err := Parse(name, s)
		return err
	}
	var s string
	if err := ctx.Scan.PopValueInto("duration", &s); err != nil {
		return err
	}
	v, err := Parse(name, s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

var _ kong.MapperValue = (*Duration)(nil)
