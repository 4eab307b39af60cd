// Package batch is the group-commit queue the stores share: callers add
// items and wait; one goroutine hands whatever is queued to a flush function
// (one transaction, one fsync) and answers every caller of that batch with
// its result. It knows nothing of SQL.
//
// A batch is whatever queued while the previous flush ran, so the fsync is
// the batching window: no timer adds latency, and batches grow with the
// load. Under load (a previous batch of at least YieldFrom items) the
// writer first yields to the goroutines ready to run, which are handlers
// about to queue their items, so batches grow and fsyncs get fewer. Each caller is
// answered only once its batch is durable: a 201 means on disk.
package batch

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
)

// ErrClosed is returned by Add once the queue is closed.
var ErrClosed = errors.New("batch: queue closed")

// Options shape a queue.
type Options struct {
	// Max bounds one batch.
	Max int
	// Before taking a batch, a flusher whose previous batch had at least
	// YieldFrom items yields Yields times, so the goroutines that are about
	// to add (handlers, under load) go first and the batch grows. At light
	// load yielding would only delay the commit.
	YieldFrom, Yields int
	// OnFlush, if set, is called after every batch with its size, the time
	// the flush took and its error.
	OnFlush func(size int, d time.Duration, err error)
}

// Queue batches items of type T for one flush function.
type Queue[T any] struct {
	opts  Options
	flush func([]T) error

	mu     sync.RWMutex // guards closed and sending on items
	closed bool
	items  chan pending[T]
	done   chan struct{}
}

type pending[T any] struct {
	v    T
	done chan error
}

// New starts a queue whose batches go to flush, one batch at a time, in
// the order they were added. The batching window is the previous flush:
// whatever is queued when it ends is the next batch.
func New[T any](opts Options, flush func([]T) error) *Queue[T] {
	if opts.Max < 1 {
		opts.Max = 1
	}
	q := &Queue[T]{opts: opts, flush: flush, items: make(chan pending[T], 4*opts.Max), done: make(chan struct{})}
	go q.run()
	return q
}

// Add queues v and waits until its batch is flushed, returning the flush's
// error. A cancelled ctx stops the wait, not the flush: v may still be
// written.
func (q *Queue[T]) Add(ctx context.Context, v T) error {
	p := pending[T]{v: v, done: make(chan error, 1)}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return ErrClosed
	}
	select {
	case q.items <- p:
	case <-ctx.Done():
		q.mu.RUnlock()
		return ctx.Err()
	}
	q.mu.RUnlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking items, flushes those already queued and returns once
// the last batch is answered.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.items)
	}
	q.mu.Unlock()
	<-q.done
}

func (q *Queue[T]) run() {
	defer close(q.done)
	batch := make([]T, 0, q.opts.Max)
	waiting := make([]chan error, 0, q.opts.Max)
	last := 0 // size of the previous batch
	for p := range q.items {
		if q.opts.Yields > 0 && last >= q.opts.YieldFrom {
			for range q.opts.Yields {
				runtime.Gosched()
			}
		}
		batch, waiting = append(batch[:0], p.v), append(waiting[:0], p.done)
	fill:
		for len(batch) < q.opts.Max {
			select {
			case p, ok := <-q.items:
				if !ok {
					break fill
				}
				batch, waiting = append(batch, p.v), append(waiting, p.done)
			default:
				break fill
			}
		}
		start := time.Now()
		err := q.flush(batch)
		last = len(batch)
		if q.opts.OnFlush != nil {
			q.opts.OnFlush(len(batch), time.Since(start), err)
		}
		for _, done := range waiting {
			done <- err
		}
		clear(batch) // let the items go
	}
}
