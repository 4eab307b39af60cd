package cli

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// progress is what a long command (export, verify, migrate-store, backup)
// says on standard error while it works and when it is done. On a terminal
// one line counts as it goes, redrawn a few times a second and cleared at
// the end; without one (a pipe, a log file, cron) nothing is drawn. At the
// end one line says what was done and how long it took, terminal or not.
// The totals are not known ahead (an export streams), so it counts instead
// of drawing a bar.
type progress struct {
	w     io.Writer
	tty   bool
	start time.Time
	n     atomic.Int64 // counted in this phase
	total atomic.Int64 // counted in every phase
	mu    sync.Mutex   // guards label and the writes to w
	label string
	count bool // the line shows the count (else only the label and time)
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// progressEvery is how often the terminal line is redrawn.
const progressEvery = 200 * time.Millisecond

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, tty: isTerminal(w), start: time.Now()}
	if p.tty {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.draw()
	}
	return p
}

// Phase starts counting afresh what label names ("records of demo"),
// drawing the line at once.
func (p *progress) Phase(label string) {
	p.n.Store(0)
	p.mu.Lock()
	p.label, p.count = label, true
	p.mu.Unlock()
	p.line()
}

// working shows label and the time that goes by, for work that has
// nothing to count ("backing up koekje.db").
func (p *progress) working(label string) {
	p.mu.Lock()
	p.label, p.count = label, false
	p.mu.Unlock()
	p.line()
}

// Add counts n more.
func (p *progress) Add(n int64) {
	p.n.Add(n)
	p.total.Add(n)
}

func (p *progress) draw() {
	defer close(p.done)
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.line()
		}
	}
}

// line redraws the terminal line: the count, what it counts and the time.
func (p *progress) line() {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	elapsed := time.Since(p.start).Round(time.Second)
	switch {
	case p.label == "":
	case p.count:
		fmt.Fprintf(p.w, "\r\033[K%d %s (%s)", p.n.Load(), p.label, elapsed)
	default:
		fmt.Fprintf(p.w, "\r\033[K%s (%s)", p.label, elapsed)
	}
}

// close stops drawing and clears the line; end calls it, and a command
// defers it for the ways it can fail.
func (p *progress) close() {
	p.once.Do(func() {
		if !p.tty {
			return
		}
		close(p.stop)
		<-p.done
		p.mu.Lock()
		fmt.Fprint(p.w, "\r\033[K")
		p.mu.Unlock()
	})
}

// end prints what was done and the time it took: "koekje export: 1000
// records of demo in 1.2s".
func (p *progress) end(format string, args ...any) {
	p.close()
	fmt.Fprintf(p.w, format+" in %s\n", append(args, time.Since(p.start).Round(time.Millisecond))...)
}

// countedLog is a log whose walks count their leaves into p.
type countedLog struct {
	proof.LogStore
	p *progress
}

func (l countedLog) LogLeaves(ctx context.Context, fn func(*translog.LeafRecord) error) error {
	return l.LogStore.LogLeaves(ctx, func(r *translog.LeafRecord) error { l.p.Add(1); return fn(r) })
}

// countedPendingLog is a countedLog of a store that queues records for
// the log (PostgreSQL): the verifier asks it what is still queued.
type countedPendingLog struct {
	countedLog
	pending proof.PendingStore
}

func (l countedPendingLog) LogPending(ctx context.Context, site string, through int64) (int64, error) {
	return l.pending.LogPending(ctx, site, through)
}

// countLeaves wraps log so that its walks count into p, keeping what else
// the verifier asks of it.
func countLeaves(log proof.LogStore, p *progress) proof.LogStore {
	counted := countedLog{log, p}
	if ps, ok := log.(proof.PendingStore); ok {
		return countedPendingLog{counted, ps}
	}
	return counted
}
