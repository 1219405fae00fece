package e2e

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// screenshot renders the HTML report in headless Chromium (Debian's chromium, installed by
// scripts/install-tools.sh) and checks the PNG: the page's size, and that it is not blank.
// Without chromium the test is skipped on a developer machine and fails in CI.
func screenshot(t *testing.T, page string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium is not installed; run scripts/install-tools.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "audit.png")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--hide-scrollbars", "--window-size=1280,1800",
		"--screenshot="+out, "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	b, err := cmd.CombinedOutput()
	assert.NilError(t, err, "chromium: %s", b)
	f, err := os.Open(out)
	assert.NilError(t, err, "chromium wrote no screenshot: %s", b)
	defer f.Close()
	img, err := png.Decode(f)
	assert.NilError(t, err)
	bounds := img.Bounds()
	assert.Check(t, bounds.Dx() == 1280 && bounds.Dy() == 1800, "screenshot is %dx%d", bounds.Dx(), bounds.Dy())
	inked, colours := inkedPixels(img)
	total := bounds.Dx() * bounds.Dy()
	// A page with text, tables, severity cards and the chart inks a few percent of its
	// pixels in several colours; a blank or failed render inks none.
	assert.Check(t, inked > total/50, "only %d of %d pixels are not white", inked, total)
	assert.Check(t, colours >= 6, "only %d distinct colours", colours)
	if keep := os.Getenv("AUDIT_SCREENSHOT"); keep != "" {
		b, _ := os.ReadFile(out)
		assert.NilError(t, os.WriteFile(keep, b, 0o644))
	}
	t.Logf("screenshot %dx%d: %d%% of pixels inked, %d colours", bounds.Dx(), bounds.Dy(), 100*inked/total, colours)
}

func inkedPixels(img image.Image) (inked, colours int) {
	seen := map[string]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				inked++
			}
			// Coarse buckets, so anti-aliasing does not count as colours.
			seen[fmt.Sprintf("%d/%d/%d", r>>12, g>>12, bl>>12)] = true
		}
	}
	return inked, len(seen)
}
