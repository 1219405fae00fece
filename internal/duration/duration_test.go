package duration

import (
	"errors"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 168 * time.Hour, "30d": 720 * time.Hour, "1d12h": 36 * time.Hour, "72h": 72 * time.Hour,
		"90m": 90 * time.Minute, "0": 0, "0d": 0, " 2d ": 48 * time.Hour,
	} {
		got, err := Parse("--x", in)
		assert.Check(t, err, "%q", in)
		assert.Check(t, is.Equal(got, want), "%q", in)
	}
	for _, in := range []string{"", "d", "7", "1.5d", "7days", "d7", "1d-2h", "abc", "7d7d"} {
		_, err := Parse("--x", in)
		assert.Check(t, is.ErrorContains(err, `--x "`+in+`" is not a duration: expected a number with a unit, such as 90m, 72h or 7d`), "%q", in)
	}
	for _, in := range []string{"-1h", "-7d", "-1d2h"} {
		_, err := Parse("--warn-within", in)
		assert.Check(t, is.Error(err, "--warn-within "+in+" is negative: expected a duration such as 72h or 7d"), "%q", in)
	}
}

func TestString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		168 * time.Hour: "7d", 36 * time.Hour: "1d12h", 24*time.Hour + 30*time.Second: "1d30s",
		25*time.Hour + 90*time.Second: "1d1h1m30s", 72 * time.Hour: "3d", 90 * time.Minute: "1h30m0s", 0: "0s",
	} {
		assert.Check(t, is.Equal(Duration(d).String(), want), "%s", time.Duration(d))
	}
}

// TestFlag: the kong mapper reads days, and a negative value given as its own argument gets
// the duration's sentence, not the parser's "expected a value" hint.
func TestFlag(t *testing.T) {
	var cli struct {
		Within Duration `name:"within" default:"3d"`
	}
	p, err := kong.New(&cli)
	assert.NilError(t, err)
	_, err = p.Parse(nil)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(cli.Within.D(), 72*time.Hour))
	_, err = p.Parse([]string{"--within", "30d"})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(cli.Within.D(), 720*time.Hour))
	for _, args := range [][]string{{"--within", "-1h"}, {"--within=-1h"}} {
		_, err = p.Parse(args)
		var de *Error
		assert.Assert(t, errors.As(err, &de), "%v", err)
		assert.Check(t, is.Equal(de.Error(), "--within -1h is negative: expected a duration such as 72h or 7d"))
	}
}
