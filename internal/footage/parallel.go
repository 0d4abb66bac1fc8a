package footage

import (
	"context"
	"sync"
)

// forEach calls fn for each item, n at a time, handing the items out in their order
// (oldest first, where they are chunks) until ctx ends. It returns when every call has.
func forEach[T any](ctx context.Context, n int, items []T, fn func(T)) {
	jobs := make(chan T)
	var wg sync.WaitGroup
	for range max(n, 1) {
		wg.Go(func() {
			for it := range jobs {
				fn(it)
			}
		})
	}
	for _, it := range items {
		select {
		case jobs <- it:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
}
