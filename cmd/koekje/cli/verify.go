package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

func verifyCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("verify", getenv, stderr)
	site := fs.String("site", "", "verify only this site")
	checkpoint := fs.String("checkpoint", "", "a signed log checkpoint you kept (or a witness cosigned): the database must still hold that log")
	logKey := fs.String("log-key", "", "the log's verifier key you pinned; by default the database's own")
	var witnesses []*translog.WitnessClient
	fs.Func("witness", "a witness as URL=KEY, repeatable: the newest checkpoint any of them cosigned is the reference, and every one's must be of this log", witnessFlag(&witnesses))
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if len(witnesses) > 0 && *checkpoint != "" {
		return errors.New("give one kind of reference: --checkpoint or --witness")
	}
	var ref []byte
	if *checkpoint != "" {
		var err error
		if ref, err = os.ReadFile(*checkpoint); err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
		}
	}
	list, _, db, err := o.openSites(ctx, *site)
	if err != nil {
		return err
	}
	defer db.Close()
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		return err
	}
	if *logKey == "" {
		signer, err := db.LogSigner(ctx)
		if err != nil {
			return err
		}
		if signer != nil {
			*logKey = signer.VerifierKey()
		}
	}
	if *logKey == "" && (ref != nil || len(witnesses) > 0) {
		return errors.New("this database keeps no log; give --log-key")
	}
	if len(witnesses) > 0 {
		if ref, err = witnessedReference(ctx, db, *logKey, witnesses); err != nil {
			return err
		}
	}
	pubs, ids := keys.Ring().Public()
	enc := json.NewEncoder(stdout)
	var (
		results   []*proof.Result
		auditKeys [][]byte
		records   int64
	)
	prog := newProgress(stderr)
	defer prog.close()
	for _, s := range list {
		prog.Phase("records of " + s + " verified")
		res, err := proof.Verify(ctx, proof.Counting(db, prog.Add), s, pubs, ids)
		if err != nil {
			return err
		}
		records = prog.total.Load()
		results = append(results, res)
		if *logKey != "" {
			auditKey, err := db.LogAuditKey(ctx, s)
			if err != nil {
				return err
			}
			auditKeys = append(auditKeys, auditKey)
		}
	}
	// Every site against the log in one pass over its leaves.
	var leaves int64
	if *logKey != "" {
		prog.Phase("log leaves checked")
		if err := proof.VerifyLogSites(ctx, countLeaves(db, prog), results, *logKey, auditKeys, ref); err != nil {
			return err
		}
		leaves = prog.n.Load()
	}
	ok := true
	for _, res := range results {
		v, err := checkVersions(ctx, db, res)
		if err != nil {
			return err
		}
		ok = ok && v.OK
		enc.Encode(v)
	}
	// The log against what the server signed before, kept beside the key
	// file: a restored backup or a cut tail verifies as a chain, not as the
	// log the server published.
	if *logKey != "" {
		if err := checkReference(ctx, db, *logKey); err != nil {
			enc.Encode(map[string]any{"ok": false, "log": "reference", "error": err.Error()})
			ok = false
		}
	}
	verdict := "all verify"
	if !ok {
		verdict = "NOT ALL VERIFY"
	}
	prog.end("koekje verify: %d sites, %d records and %d log leaves read, %s", len(list), records, leaves, verdict)
	if !ok {
		return ErrFailed
	}
	return nil
}

// witnessedReference reads each witness's newest cosigned checkpoint of the
// log and returns the largest: the reference the log is verified against
// (a database that does not extend it fails with log_mismatch). Every
// smaller one must be a tree the database's log extends too, or the log
// showed the witnesses different histories.
func witnessedReference(ctx context.Context, db store.Store, logKey string, witnesses []*translog.WitnessClient) ([]byte, error) {
	origin, _, _ := strings.Cut(logKey, "+")
	signed := make([][]byte, len(witnesses))
	cps := make([]translog.Checkpoint, len(witnesses))
	largest := 0
	for i, wc := range witnesses {
		var err error
		if signed[i], err = wc.Witnessed(ctx, origin, logKey); err != nil {
			return nil, err
		}
		if cps[i], _, err = translog.OpenCheckpoint(signed[i], logKey); err != nil {
			return nil, fmt.Errorf("witness %s: %w", wc.URL, err)
		}
		if cps[i].Size > cps[largest].Size {
			largest = i
		}
	}
	cp, hashes, err := translog.Latest(ctx, db, logKey)
	if err != nil {
		return nil, err
	}
	for i, wc := range witnesses {
		if i == largest {
			continue
		}
		if err := translog.Consistent(cps[i], cp, hashes); err != nil {
			return nil, fmt.Errorf("witness %s cosigned a checkpoint of %d leaves that the database's log does not extend: %w", wc.URL, cps[i].Size, err)
		}
	}
	return signed[largest], nil
}

// checkReference holds the database's log against the reference file
// beside its key file, when there is one.
func checkReference(ctx context.Context, db store.Store, logKey string) error {
	ref, err := translog.OpenReference(db.KeyFile())
	if err != nil {
		return err
	}
	if _, ok := ref.Checkpoint(); !ok {
		return nil
	}
	cp, hashes, err := translog.Latest(ctx, db, logKey)
	if err != nil {
		return err
	}
	if err := ref.Check(cp, hashes); err != nil {
		ref0, _ := ref.Checkpoint()
		return fmt.Errorf("%w: the database holds %d leaves, the reference %d", err, cp.Size, ref0.Size)
	}
	return nil
}

// siteVerification is what verify says of one site: its chain and log,
// and the banner versions it stored, each of which must hash to its name.
type siteVerification struct {
	*proof.Result
	Versions        int      `json:"versions"`
	DamagedVersions []string `json:"damaged_versions,omitempty"`
}

// checkVersions reads every banner version stored for res's site through
// the store's own check; a damaged one fails the site.
func checkVersions(ctx context.Context, db store.Store, res *proof.Result) (*siteVerification, error) {
	v := &siteVerification{Result: res}
	hashes, err := db.Versions(ctx, res.Site)
	if err != nil {
		return nil, err
	}
	v.Versions = len(hashes)
	for _, h := range hashes {
		_, err := db.Version(ctx, res.Site, h)
		switch {
		case consent.ErrorCode(err) == consent.EDAMAGED:
			v.DamagedVersions = append(v.DamagedVersions, h)
			v.OK = false
		case err != nil:
			return nil, fmt.Errorf("site %s: banner version %s: %w", res.Site, h, err)
		}
	}
	return v, nil
}
