package translog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// WitnessedStore is what sending checkpoints to witnesses needs of a store.
type WitnessedStore interface {
	// LatestCheckpoint returns the newest signed checkpoint, or nil.
	LatestCheckpoint(ctx context.Context) ([]byte, error)
	// LogHashes reads stored hashes by tlog's stored hash index.
	LogHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// SaveWitnessed keeps a checkpoint with the cosignatures it gathered.
	SaveWitnessed(ctx context.Context, size int64, cosigned []byte) error
	// LatestWitnessed returns the newest checkpoint the witnesses
	// cosigned, or nil.
	LatestWitnessed(ctx context.Context) ([]byte, error)
}

// WitnessClient is one witness the log sends its checkpoints to.
type WitnessClient struct {
	URL  string // the witness's prefix; add-checkpoint is below it
	Key  string // its cosignature verifier key
	size int64  // the size the witness last cosigned, as far as we know
	// failing says why the last request to it brought no cosignature
	// that verified ("" after one did); Witnessing.mu guards it.
	failing string
}

// ErrWitnesses wraps the errors of witnesses that refused a checkpoint, did
// not answer, or answered with no cosignature that verified: Witnessing
// says so itself, once per change, so Run does not repeat them.
var ErrWitnesses = errors.New("witnesses")

// Witnessing sends the log's newest checkpoint to its witnesses, off the
// write path, and keeps it as witnessed once Policy of them cosigned it.
type Witnessing struct {
	Store     WitnessedStore
	LogKey    string
	Witnesses []*WitnessClient
	Policy    int // cosignatures needed; at least 1
	Client    *http.Client
	Timeout   time.Duration // for one witness's answer; 10 s when zero
	Log       *slog.Logger
	// Guard, when set, is the log's guard: only checkpoints it published
	// (the reference file held them first) are sent.
	Guard *Guard
	// Lease, when set, is asked before each round and the round is skipped
	// unless it answers true: of several instances sharing a store, one
	// at a time sends checkpoints, and all publish what it saved.
	Lease func(ctx context.Context) (bool, error)
	// Observe, when set, hears the outcome of every request to a witness:
	// a nil error for a cosignature that verified. It feeds a metric.
	Observe func(url string, err error)
	// Stale, with Lease, is how long the witnessed checkpoint may lag
	// behind the log's newest before an instance that does not hold the
	// lease says so in Degraded: only the holder hears the witnesses, and
	// the others learn of its trouble from the store. Run makes it three
	// rounds and a witness's timeout when zero.
	Stale time.Duration
	done  int64 // size last witnessed
	mu    sync.Mutex
	// lag is what an instance without the lease saw of the witnessed
	// checkpoint: its size, since when it lags the log's newest, and the
	// degraded state it makes; mu guards it.
	lag struct {
		size  int64
		since time.Time
		why   string
	}
}

// Degraded says which witnesses refused or did not answer the last
// checkpoint sent to them, and why; "" while every one cosigns. A refusal
// may be the first sign of a fork, so it is never quiet: it goes to
// /healthz and the console along with the reference's state.
func (w *Witnessing) Degraded() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var why []string
	for _, wc := range w.Witnesses {
		if wc.failing != "" {
			why = append(why, "witness "+wc.URL+" does not cosign the log's checkpoints: "+wc.failing)
		}
	}
	if w.lag.why != "" {
		why = append(why, w.lag.why)
	}
	return strings.Join(why, "; ")
}

// outcome records what one witness answered: an ERROR line when it starts
// failing, an INFO line when it cosigns again, nothing in between.
func (w *Witnessing) outcome(wc *WitnessClient, size int64, err error) {
	if w.Observe != nil {
		w.Observe(wc.URL, err)
	}
	log := w.logger()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err != nil && wc.failing == "":
		log.Error("a witness refuses the log's checkpoint or does not answer; the log publishes only what its policy's witnesses cosigned",
			"witness", wc.URL, "size", size, "err", err)
		wc.failing = err.Error()
	case err != nil:
		wc.failing = err.Error()
	case wc.failing != "":
		log.Info("the witness cosigns the log's checkpoints again", "witness", wc.URL, "size", size)
		wc.failing = ""
	}
}

// Run witnesses the newest checkpoint every interval, when the log grew.
func (w *Witnessing) Run(ctx context.Context, every time.Duration) {
	if w.Stale == 0 {
		w.Stale = 3*every + w.timeout()
	}
	for {
		if err := w.round(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrWitnesses) {
			w.logger().Warn("witnessing", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// round runs Once if this instance holds the lease (or needs none).
func (w *Witnessing) round(ctx context.Context) error {
	if w.Lease != nil {
		ok, err := w.Lease(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return w.Watch(ctx, time.Now())
		}
		w.mu.Lock()
		w.lag.since, w.lag.why = time.Time{}, "" // its own outcomes count now
		w.mu.Unlock()
	}
	return w.Once(ctx)
}

// logger is Log, or one that writes nothing.
func (w *Witnessing) logger() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}

// timeout bounds one witness's answer.
func (w *Witnessing) timeout() time.Duration {
	if w.Timeout == 0 {
		return 10 * time.Second
	}
	return w.Timeout
}

// Watch is what an instance that does not send checkpoints (it does not
// hold the lease) does instead: it reads the store's newest checkpoint and
// newest witnessed one, and once the witnessed one has lagged behind for
// longer than Stale at now, Degraded says so, with an ERROR line; an INFO
// line when it catches up.
func (w *Witnessing) Watch(ctx context.Context, now time.Time) error {
	cp, _, err := Latest(ctx, w.Store, w.LogKey)
	if err != nil {
		return err
	}
	var size int64
	if ws, err := w.Store.LatestWitnessed(ctx); err != nil {
		return err
	} else if ws != nil {
		wcp, _, err := OpenCheckpoint(ws, w.LogKey)
		if err != nil {
			return err
		}
		size = wcp.Size
	}
	log := w.logger()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case size >= cp.Size:
		if w.lag.why != "" {
			log.Info("the witnesses cosign the log's checkpoints again", "size", size)
		}
		w.lag.since, w.lag.why = time.Time{}, ""
	case w.lag.since.IsZero() || w.lag.size != size:
		w.lag.size, w.lag.since = size, now // it lags from now, or moved on
	case now.Sub(w.lag.since) > w.Stale && w.lag.why == "":
		w.lag.why = fmt.Sprintf("the witnesses have cosigned no checkpoint beyond size %d for %s while the log reached %d: the instance sending checkpoints to them says why in its log",
			size, now.Sub(w.lag.since).Round(time.Second), cp.Size)
		log.Error("the log's witnessed checkpoint lags behind its newest", "witnessed_size", size, "size", cp.Size, "since", w.lag.since)
	}
	return nil
}

// Once sends the newest checkpoint to every witness and saves it with their
// cosignatures if enough of them signed.
func (w *Witnessing) Once(ctx context.Context) error {
	signed, err := w.Guard.Newest(ctx, w.Store)
	if err != nil || signed == nil {
		return err
	}
	cp, n, err := OpenCheckpoint(signed, w.LogKey)
	if err != nil {
		return err
	}
	if cp.Size == w.done {
		return nil
	}
	hashes := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return w.Store.LogHashes(ctx, idx) })
	// The note kept is rebuilt from the text, the log's verified signature
	// and the cosignatures that verify under the configured keys: a line
	// a witness (or anyone between it and the log) adds is never published.
	sigs := append([]note.Signature{}, n.Sigs...)
	got := 0
	var errs []error
	for _, wc := range w.Witnesses {
		answer, err := w.send(ctx, wc, cp, signed, hashes)
		if err == nil {
			var cs []note.Signature
			if cs, err = Cosignatures(n.Text, answer, wc.Key); err == nil {
				sigs = append(sigs, cs...)
				got++
			}
		}
		w.outcome(wc, cp.Size, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", wc.URL, err))
		}
	}
	if got < max(w.Policy, 1) {
		return fmt.Errorf("%w: checkpoint %d: %d of %d cosignatures: %w", ErrWitnesses, cp.Size, got, max(w.Policy, 1), errors.Join(errs...))
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text, Sigs: sigs})
	if err != nil {
		return err
	}
	if err := w.Store.SaveWitnessed(ctx, cp.Size, cosigned); err != nil {
		return err
	}
	w.done = cp.Size
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrWitnesses, errors.Join(errs...))
	}
	return nil
}

// send asks one witness to cosign, learning its size on a conflict.
func (w *Witnessing) send(ctx context.Context, wc *WitnessClient, cp Checkpoint, signed []byte, hashes tlog.HashReader) ([]byte, error) {
	for try := 0; try < 2; try++ {
		req := &AddCheckpoint{OldSize: wc.size, Checkpoint: signed}
		if wc.size > cp.Size {
			return nil, fmt.Errorf("the witness has seen size %d, more than this log's %d", wc.size, cp.Size)
		}
		if wc.size > 0 && wc.size < cp.Size {
			p, err := tlog.ProveTree(cp.Size, wc.size, hashes)
			if err != nil {
				return nil, err
			}
			req.Proof = p
		}
		ctx, cancel := context.WithTimeout(ctx, w.timeout())
		hreq, _ := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(wc.URL, "/")+"/add-checkpoint", bytes.NewReader(req.Encode()))
		resp, err := w.Client.Do(hreq)
		if err != nil {
			cancel()
			return nil, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		switch resp.StatusCode {
		case http.StatusOK:
			wc.size = cp.Size
			return body, nil
		case http.StatusConflict:
			n, err := strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("conflict without a size: %q", body)
			}
			if n == wc.size {
				return nil, fmt.Errorf("the witness refuses size %d: it saw another log at that size (a fork)", cp.Size)
			}
			wc.size = n
		case http.StatusUnprocessableEntity:
			return nil, fmt.Errorf("the witness refuses size %d as not extending what it cosigned (%s): %s", cp.Size, resp.Status, strings.TrimSpace(string(body)))
		default:
			return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
	}
	return nil, errors.New("the witness's size keeps changing")
}
