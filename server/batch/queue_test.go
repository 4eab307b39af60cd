package batch_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/koekje/koekje/server/batch"
)

// Every item is flushed exactly once, batches stay within Max, and each
// caller gets its own batch's answer.
func TestQueueBatchesAndAnswers(t *testing.T) {
	var (
		mu      sync.Mutex
		seen    = map[int]int{}
		batches int
		biggest int
	)
	boom := errors.New("boom")
	const n = 1000
	// The first flush waits until every item is on its way, as a slow
	// commit would: the rest must then come in batches.
	var started atomic.Int64
	first := true
	q := batch.New(batch.Options{Max: 16, YieldFrom: 4, Yields: 2}, func(b []int) error {
		if first {
			first = false
			for started.Load() < n {
				runtime.Gosched()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		batches++
		biggest = max(biggest, len(b))
		for _, v := range b {
			seen[v]++
		}
		for _, v := range b {
			if v%100 == 99 {
				return boom
			}
		}
		return nil
	})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			started.Add(1)
			errs[i] = q.Add(context.Background(), i)
		})
	}
	wg.Wait()
	q.Close()
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("item %d flushed %d times", i, seen[i])
		}
		if i%100 == 99 && !errors.Is(errs[i], boom) {
			t.Errorf("item %d: got %v, want the failed flush's error", i, errs[i])
		}
	}
	if biggest > 16 {
		t.Errorf("a batch of %d items, over Max", biggest)
	}
	if batches > n/4 {
		t.Errorf("%d batches for %d items queued behind a slow flush: too little was grouped", batches, n)
	}
}

// Close flushes what is queued; later Adds are refused.
func TestQueueCloseDrains(t *testing.T) {
	release := make(chan struct{})
	var flushed []int
	q := batch.New(batch.Options{Max: 4}, func(b []int) error {
		<-release
		flushed = append(flushed, b...)
		return nil
	})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := q.Add(context.Background(), i); err != nil {
				t.Errorf("add %d: %v", i, err)
			}
		})
	}
	close(release)
	wg.Wait()
	q.Close()
	if len(flushed) != 10 {
		t.Fatalf("flushed %d items, want 10", len(flushed))
	}
	if err := q.Add(context.Background(), 11); !errors.Is(err, batch.ErrClosed) {
		t.Fatalf("add after close: %v, want ErrClosed", err)
	}
	q.Close() // a second close is harmless
}

// A cancelled wait returns the context's error; the item is still flushed.
func TestQueueCancelledWait(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan int, 1)
	q := batch.New(batch.Options{Max: 1}, func(b []int) error {
		close(started)
		<-release
		done <- b[0]
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- q.Add(ctx, 7) }()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	close(release)
	q.Close()
	if v := <-done; v != 7 {
		t.Fatalf("flushed %d, want 7", v)
	}
}
