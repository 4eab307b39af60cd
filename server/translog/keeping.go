package translog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/koekje/koekje/server/keyfile"
)

// CheckLogState holds the database's log against what this server signed
// or saw before, kept in the reference file beside the key file, and
// against the newest checkpoint each configured witness cosigned, and
// returns the guard every signing asks from now on. A log that does not
// extend them (a restored backup, a tail cut or rewritten in the database)
// is not refused: the server starts, signs nothing and keeps recording,
// and the guard says why, until the missing leaves are restored. Without a
// reference file, a log that is not empty needs a witness that confirms it,
// or the operator's --accept-log-state; until then it is held too. Only a
// reference file it cannot read, or a store it cannot read, is an error.
func CheckLogState(ctx context.Context, db CheckpointReader, kek *keyfile.Key, log *slog.Logger, logKey string, witnesses []*WitnessClient, accept bool) (*Guard, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ref, err := OpenReference(kek)
	if err != nil {
		return nil, err
	}
	g := NewGuard(ref, log)
	cp, signed, hashes, err := latestSigned(ctx, db, logKey)
	if err != nil {
		return nil, fmt.Errorf("the log's newest checkpoint: %w", err)
	}
	confirmed := 0
	for _, wc := range witnesses {
		signed, err := wc.Witnessed(ctx, cp.Origin, logKey)
		if err != nil {
			log.Warn("a witness's newest checkpoint could not be read to check the log against it", "witness", wc.URL, "err", err)
			continue
		}
		wcp, _, err := OpenCheckpoint(signed, logKey)
		if err != nil {
			return nil, err
		}
		if err := Consistent(wcp, cp, hashes); err != nil {
			// The log signed that checkpoint and a witness keeps it: it is
			// public history, and the reference when newer than the one
			// kept, so that restoring up to it lets go.
			if kept, ok := ref.Checkpoint(); !ok || wcp.Size > kept.Size {
				if err := ref.Accept(wcp); err != nil {
					return nil, err
				}
				continue
			}
			g.holdAtStart(fmt.Sprintf("witness %s cosigned a checkpoint of %d leaves: %v; see \"Back up and restore\" in the README", wc.URL, wcp.Size, err))
			continue
		}
		confirmed++
	}
	err = ref.Check(cp, hashes)
	switch {
	case err == nil:
		if err := ref.Accept(cp); err != nil {
			return nil, err
		}
		g.publish(cp, signed)
	case errors.Is(err, ErrNoReference) && (accept || confirmed > 0):
		log.Warn("no log reference file: the log's tree is taken as it is", "size", cp.Size, "confirmed_by_witnesses", confirmed, "accepted_by_flag", accept)
		if err := ref.Accept(cp); err != nil {
			return nil, err
		}
		g.publish(cp, signed)
	case errors.Is(err, ErrNoReference):
		g.holdAtStart(fmt.Sprintf("%v: start with a witness that cosigned the log (--witness) or, if this database was moved here as it was, with --accept-log-state", err))
	default:
		g.set(holdReference, describe(err, cp.Size, ref).Error())
	}
	return g, nil
}

// keep moves the reference to the store's newest checkpoint, or holds the
// guard while that does not extend it. Once the reference file holds it,
// synced, the checkpoint is published.
func (g *Guard) keep(ctx context.Context, db CheckpointReader, logKey string) error {
	cp, signed, hashes, err := latestSigned(ctx, db, logKey)
	if err == nil {
		err = g.ref.Check(cp, hashes)
		if errors.Is(err, ErrNoReference) {
			return nil // held since the start, until a restart confirms the log
		}
		if err != nil {
			err = describe(err, cp.Size, g.ref)
		}
	}
	if err == nil {
		err = g.ref.Advance(cp, hashes)
	}
	if err != nil {
		if ctx.Err() == nil {
			g.set(holdReference, err.Error())
		}
		return err
	}
	g.publish(cp, signed)
	g.set(holdReference, "")
	return nil
}

// AdvanceReference moves the reference a last time, at shutdown.
func (g *Guard) AdvanceReference(ctx context.Context, db CheckpointReader, logKey string) {
	if g.Held() {
		return
	}
	g.keep(ctx, db, logKey)
}

// ReferenceEvery is how often the reference follows the log: the newest
// checkpoint is proven consistent with the reference and synced to disk,
// then published. It is the cadence at which checkpoints go out, which
// keeps the sync off the write path.
const ReferenceEvery = 250 * time.Millisecond

// Keep moves the reference along with the log while serving, and holds the
// guard while the store's newest checkpoint does not extend it. While the
// guard holds, the store is woken at each tick whose checkpoint extends the
// reference, to look at its tree again and append what waits.
func (g *Guard) Keep(ctx context.Context, db CheckpointReader, logKey string) {
	tick := time.NewTicker(ReferenceEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if g.keep(ctx, db, logKey) == nil && g.Held() {
			g.mu.Lock()
			wake := g.wake
			g.mu.Unlock()
			if wake != nil {
				wake()
			}
		}
	}
}

// ReferenceCopied makes the newest checkpoint of a log migrate-store copied
// and verified the reference beside the target's key file.
func ReferenceCopied(keyFile string, signed []byte, logKey string) error {
	if signed == nil {
		return nil
	}
	cp, _, err := OpenCheckpoint(signed, logKey)
	if err != nil {
		return err
	}
	kek, err := keyfile.Load(keyFile)
	if err != nil {
		return err
	}
	ref, err := OpenReference(kek)
	if err != nil {
		return err
	}
	return ref.Accept(cp)
}
