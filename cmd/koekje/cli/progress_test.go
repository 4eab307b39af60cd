package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/sqlite"
)

// openPTY opens a pseudo-terminal: what the command writes to tty shows
// on master, as on a person's screen.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// Long commands count on a terminal as they go and not without one; at the
// end they say what they did and how long it took, terminal or not.
func TestProgress(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		r := &consent.Record{Site: "voip-nl", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true}, Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	backup := filepath.Join(t.TempDir(), "copy.db")
	tests := []struct {
		args       []string
		live, last string
	}{
		{[]string{"export", "--db", path}, "records of voip-nl exported (", "koekje export: 5 records of voip-nl (ndjson) in "},
		{[]string{"verify", "--db", path}, "records of voip-nl verified (", "koekje verify: 1 sites, 5 records and 0 log leaves read, all verify in "},
		{[]string{"backup", "--db", path, "--to", backup}, "backing up " + path + " (", "koekje backup: "},
	}
	for _, tt := range tests {
		// Without a terminal: only the last line.
		os.Remove(backup)
		_, stderr, err := runCLIOut(t, nil, tt.args...)
		if err != nil || !strings.HasPrefix(stderr, tt.last) || strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "\r") {
			t.Errorf("%s without a terminal: %v %q, want only %q…", tt.args[0], err, stderr, tt.last)
		}
		// On a terminal: the counting line, cleared, then the last line.
		os.Remove(backup)
		master, tty := openPTY(t)
		err = Run(context.Background(), tt.args, func(string) string { return "" }, io.Discard, tty)
		tty.Close()
		shown, _ := io.ReadAll(master) // ends with EIO once the terminal is closed
		screen := string(shown)
		i, j := strings.Index(screen, "\r\033[K"), strings.LastIndex(screen, "\r\033[K"+tt.last)
		if err != nil || i < 0 || !strings.Contains(screen, tt.live) || j < i || !strings.HasSuffix(screen, "\r\n") {
			t.Errorf("%s on a terminal: %v %q, want a line counting %q, cleared, then %q", tt.args[0], err, screen, tt.live, tt.last)
		}
	}
}
