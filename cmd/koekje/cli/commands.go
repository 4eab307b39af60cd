package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// A command is one of koekje's subcommands. Each lives in a file of its
// name with its flags; this table is the one list of them, read by Run,
// the usage text and the tests.
type command struct {
	name    string
	args    string // what it takes besides flags, for the usage text
	summary string
	run     func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

// commands in the order the usage lists them; the first runs when none is
// named.
var commands = []command{
	{"serve", "", "run the consent server (the default)", serveCmd},
	{"verify", "", "check every site's hash chain", verifyCmd},
	{"export", "", "export a site's records (ndjson, csv, iso27560)", exportCmd},
	{"lookup", "ID", "show a visitor's history, oldest first", lookupCmd},
	{"purge", "", "delete old records, leaving a signed checkpoint", purgeCmd},
	{"keys", "ACTION", "list or rotate the receipt signing keys", keysCmd},
	{"token", "", "make an admin token and its config entry", tokenCmd},
	{"check-config", "FILE", "validate a configuration and summarise it", checkConfigCmd},
	{"health", "", "ask a running server's /healthz (for container health checks)", healthCmd},
	{"witness", "", "run a witness that cosigns transparency-log checkpoints", witnessCmd},
	{"verify-receipt", "RECEIPT", "check a receipt offline: its signature and its place in the log", verifyReceiptCmd},
	{"verify-export", "FILE", "check an NDJSON or CSV export offline against the public log", verifyExportCmd},
	{"log-audit", "", "check the public log from its tiles: root, growth, a site's leaves", logAuditCmd},
	{"scan", "URL…", "check a site's pages in a real Chromium against its declared cookies", scanCmd},
	{"migrate-store", "", "copy a SQLite store into an empty PostgreSQL database, verified", migrateStoreCmd},
	{"backup", "", "copy a SQLite database consistently, while it serves", backupCmd},
	{"recover-log", "", "restore the log's leaves a restored database lacks from its published tiles", recoverLogCmd},
	{"successor-log", "", "succeed a log that cannot go on under its name by a new log that carries its leaves and states the gap", successorLogCmd},
	{"version", "", "print the version", versionCmd},
}

// flagsOnly names the commands the table says take only flags: given an
// argument, they refuse it.
var flagsOnly = map[string]bool{}

func init() {
	for _, c := range commands {
		flagsOnly[c.name] = c.args == ""
	}
}

// lookupCommand returns the command of that name, or nil.
func lookupCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// usage is the text of koekje -h, made from the table.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: koekje [command] [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-14s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	b.WriteString("\nFlags go anywhere on the line. Run \"koekje COMMAND -h\" for a command's flags.\n")
	return b.String()
}
