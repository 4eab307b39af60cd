package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/server/witness"
)

// witnessCmd runs a C2SP tlog-witness for the logs whose keys it is given.
func witnessCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("witness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr(getenv, "KOEKJE_WITNESS_ADDR", "127.0.0.1:8090"), "listen address (KOEKJE_WITNESS_ADDR)")
	db := fs.String("db", envOr(getenv, "KOEKJE_WITNESS_DB", "witness.db"), "the witness's state and key (KOEKJE_WITNESS_DB)")
	name := fs.String("name", "", "the witness's name, e.g. witness.example.nl (required)")
	var logs []string
	fs.Func("log", "a log's verifier key to witness (repeat for more; GET /log/key of a Koekje server)", func(v string) error {
		logs = append(logs, v)
		return nil
	})
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if *name == "" || len(logs) == 0 {
		return errors.New("usage: koekje witness --name NAME --log LOGKEY [--log LOGKEY…] [--addr] [--db]")
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	w, err := witness.Open(*db, *name, logs, log)
	if err != nil {
		return err
	}
	defer w.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "witness key:", w.VerifierKey())
	hs := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	log.Info("witnessing", "addr", ln.Addr().String(), "logs", len(logs))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// witnessPolicy is the policy the log publishes: the configured witnesses,
// *k of which must cosign (all when 0), or none. It settles *k.
func witnessPolicy(logKey string, witnesses []*translog.WitnessClient, k *int) (*translog.Policy, error) {
	if logKey == "" {
		if len(witnesses) > 0 {
			return nil, errors.New("--witness: this store keeps no transparency log")
		}
		return nil, nil
	}
	if *k == 0 {
		*k = len(witnesses)
	}
	if len(witnesses) > 0 && (*k < 1 || *k > len(witnesses)) {
		return nil, fmt.Errorf("--witness-policy %d: want 1 to %d", *k, len(witnesses))
	}
	var keys []string
	for _, wc := range witnesses {
		keys = append(keys, wc.Key)
	}
	p, err := translog.NewPolicy(logKey, keys, *k)
	if err != nil {
		return nil, fmt.Errorf("--witness-policy: %w", err)
	}
	return p, nil
}

// witnessFlag reads --witness URL=KEY.
func witnessFlag(list *[]*translog.WitnessClient) func(string) error {
	return func(v string) error {
		url, key, ok := strings.Cut(v, "=")
		if !ok || !strings.HasPrefix(url, "http") {
			return errors.New("want URL=KEY, the witness's prefix and its verifier key")
		}
		if _, err := translog.NewCosignatureVerifier(key); err != nil {
			return err
		}
		*list = append(*list, &translog.WitnessClient{URL: url, Key: key})
		return nil
	}
}
