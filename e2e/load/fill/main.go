// Command fill writes N realistic consent records into a Koekje database
// through the store (group commit, hash chain, consent IDs minted by the
// store as for first choices), for load and export runs.
//
//	go run ./e2e/load/fill -db /tmp/k.db -n 1000000 [-log]
//
// With -log it also writes the log's reference beside the key file, as a
// server does, so that koekje serve starts on the filled database without
// --accept-log-state.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/static"
)

func main() {
	path := flag.String("db", "koekje.db", "database file")
	n := flag.Int("n", 1000000, "records to write")
	workers := flag.Int("workers", 512, "concurrent writers")
	withLog := flag.Bool("log", false, "keep the transparency log, as the server does")
	sites := flag.Int("sites", 1, "spread the records over this many sites: demo, s1, s2, …")
	flag.Parse()

	db, err := sqlite.Open(*path, nil)
	if err != nil {
		log.Fatal(err)
	}
	var logKey string
	if *withLog {
		signer, err := db.StartLog(context.Background(), "fill.test/log")
		if err != nil {
			log.Fatal(err)
		}
		logKey = signer.VerifierKey()
	}
	site := config.Demo().Site("demo")
	b, err := static.Build(site)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	siteIDs := []string{site.ID}
	for i := 1; i < *sites; i++ {
		siteIDs = append(siteIDs, fmt.Sprintf("s%d", i))
	}
	for _, id := range siteIDs {
		if err := db.PutVersion(ctx, id, b.Hash, b.Version); err != nil {
			log.Fatal(err)
		}
	}
	actions := []string{consent.AcceptAll, consent.RejectAll, consent.Custom, consent.AcceptAll, consent.RejectAll}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(*n) {
					return
				}
				a := actions[i%int64(len(actions))]
				r := &consent.Record{
					Site: siteIDs[i%int64(len(siteIDs))], Action: a, Revision: 1, ConfigHash: b.Hash, Language: "nl",
					Choices: map[string]bool{"necessary": true, "functional": a != consent.RejectAll,
						"analytics": a == consent.AcceptAll || i%3 == 0 && a == consent.Custom, "embeds": a == consent.AcceptAll},
					URL:       "https://belvast.example/diensten/hosted-telefonie",
					UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
					IP:        fmt.Sprintf("192.0.%d.0/24", i%256), GPC: a == consent.RejectAll && i%7 == 0,
				}
				if err := db.Append(ctx, r); err != nil {
					log.Fatal(err)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if *withLog {
		if err := keepReference(ctx, db, logKey); err != nil {
			log.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		log.Fatal(err)
	}
	st, _ := os.Stat(*path)
	fmt.Printf("%d records in %s (%.0f records/s); %s is %d bytes (%.0f B/record)\n",
		*n, el.Round(time.Millisecond), float64(*n)/el.Seconds(), *path, st.Size(), float64(st.Size())/float64(*n))
}

// keepReference makes the log's newest checkpoint its reference, proven
// consistent with the reference there was (a refill extends it).
func keepReference(ctx context.Context, db *sqlite.DB, logKey string) error {
	ref, err := translog.OpenReference(db.KeyFile())
	if err != nil {
		return err
	}
	cp, hashes, err := translog.Latest(ctx, db, logKey)
	if err != nil {
		return err
	}
	if _, ok := ref.Checkpoint(); !ok {
		return ref.Accept(cp)
	}
	return ref.Advance(cp, hashes)
}
