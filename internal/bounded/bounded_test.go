package bounded

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestForEachBoundsAndCoversAll(t *testing.T) {
	var running, peak atomic.Int32
	var mu sync.Mutex
	seen := map[int]bool{}
	ForEach(t.Context(), 50, 4, func(i int) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		running.Add(-1)
		mu.Lock()
		seen[i] = true
		mu.Unlock()
	})
	assert.Equal(t, len(seen), 50)
	assert.Assert(t, peak.Load() <= 4, "peak %d", peak.Load())
}

func TestForEachStopsStartingAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var started atomic.Int32
	ForEach(ctx, 100, 1, func(i int) {
		if started.Add(1) == 3 {
			cancel()
		}
	})
	assert.Equal(t, started.Load(), int32(3))
}
