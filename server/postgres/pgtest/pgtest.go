// Package pgtest starts a throwaway PostgreSQL cluster from Debian's
// postgresql package for tests: initdb and pg_ctl in a temporary directory,
// listening on a Unix socket only, one cluster per test binary and a fresh
// database per test. As root it runs them as the postgres user (initdb
// refuses root). Without PostgreSQL installed, tests skip with an install
// hint, except under CI=true, where they fail.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running throwaway cluster.
type Cluster struct {
	dir, bin string
	port     int
	asUser   bool // commands run through runuser -u postgres
	count    atomic.Int64
}

var (
	once    sync.Once
	shared  *Cluster
	startup error
)

// hint says how to get PostgreSQL.
const hint = "PostgreSQL is not installed: apt-get install -y postgresql (Debian), or set KOEKJE_PG_BIN to its bin directory"

// Shared returns the test binary's cluster, starting it the first time;
// Stop it from TestMain. Without PostgreSQL it skips tb (fails under CI).
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	once.Do(func() { shared, startup = Start(false) })
	if startup != nil {
		if _, missing := startup.(errMissing); missing && os.Getenv("CI") != "true" {
			tb.Skip(hint)
		}
		tb.Fatalf("PostgreSQL: %v", startup)
	}
	return shared
}

// StopShared stops the shared cluster, if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

type errMissing struct{}

func (errMissing) Error() string { return hint }

// Start makes and starts a cluster. fsync off makes tests faster; load
// measurements start one with fsync on.
func Start(fsync bool) (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "koekje-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, asUser: os.Geteuid() == 0}
	if c.asUser {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		os.Chmod(dir, 0o700)
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-A", "trust", "-U", "koekje", "--no-sync", "-E", "UTF8", "--locale", "C"); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	c.port, err = freePort()
	if err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories=%s -p %d -c max_connections=200 -c fsync=%s -c shared_buffers=128MB",
		dir, c.port, map[bool]string{true: "on", false: "off"}[fsync])
	if out, err := c.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return nil, fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return c, nil
}

// DSN is the connection string of a database of the cluster.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://koekje@/%s?host=%s&port=%d&sslmode=disable", db, c.dir, c.port)
}

// NewDatabase makes an empty database for tb and returns its DSN.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.count.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	return c.DSN(name)
}

// Stop stops the cluster and removes its files.
func (c *Cluster) Stop() {
	c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.dir)
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asUser {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// findBin finds the directory of initdb and pg_ctl: KOEKJE_PG_BIN, Debian's
// /usr/lib/postgresql/<newest>/bin, or the PATH.
func findBin() (string, error) {
	if b := os.Getenv("KOEKJE_PG_BIN"); b != "" {
		return b, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errMissing{}
}

func version(dir string) int {
	n, _ := strconv.Atoi(strings.Split(strings.TrimPrefix(dir, "/usr/lib/postgresql/"), "/")[0])
	return n
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
