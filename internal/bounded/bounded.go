// Package bounded runs work concurrently with a cap on how much runs at once: how apply and
// audit keep their requests in flight within --concurrency.
package bounded

import (
	"context"
	"sync"
)

// ForEach runs fn(i) for i in [0,n) with at most conc running at once (at least one). It
// starts nothing more once ctx is done, and returns when every started fn has returned.
func ForEach(ctx context.Context, n, conc int, fn func(i int)) {
	sem := make(chan struct{}, max(conc, 1))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		// Checked after the wait for a slot, which may have lasted until ctx ended.
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}
