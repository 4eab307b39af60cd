// Package pgtest runs the PostgreSQL cluster tests use, from Debian's
// postgresql package: initdb and pg_ctl (as the postgres user when run as
// root, since initdb refuses root), a Unix socket only, fsync off, and a
// fresh database per test, empty (NewDatabase) or a copy of a migrated
// template (NewDatabaseFrom). Without PostgreSQL installed, tests skip with
// an install hint, except under CI=true, where they fail.
//
// The test binaries of a run share one cluster (go test runs packages side
// by side), so initdb's seconds are paid once per run, not per package. It
// lives in a directory per user in the temporary directory, beside two lock
// files (flock):
//
//   - lock is held exclusively by whoever starts, joins, leaves or removes
//     the cluster, so those never interleave;
//   - users is held shared by every process that uses the cluster, from
//     Shared until StopShared or the process's end.
//
// The last one out, the one that then gets users exclusively without
// waiting, stops the cluster and removes it: nothing is left running after
// a run, and no database outlives it. The kernel drops a killed process's
// lock with its file, so a cluster nobody holds is stale, whatever its
// files say: the next Shared that finds users free stops the postmaster
// left there, if it still runs, removes it all and starts afresh. No pid
// file, lease or timeout is trusted to tell. Leaving the cluster running
// for the next run would save one start per run, but leave a server and
// its databases behind on every developer's machine, and whether one left
// there still fits (another PostgreSQL, a crash under fsync off) would be
// a guess.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Cluster is a running cluster.
type Cluster struct {
	dir, bin string
	asUser   bool // commands run through runuser -u postgres
	count    atomic.Int64

	// base is the directory of the shared cluster's lock files.
	base string

	mu    sync.Mutex
	users *os.File        // held shared while this process uses the shared cluster
	made  map[string]bool // templates known to exist, by name
}

// port only names the socket file: every cluster has its own directory
// and listens on no TCP port.
const port = 5432

var (
	once    sync.Once
	shared  *Cluster
	startup error
)

// hint says how to get PostgreSQL.
const hint = "PostgreSQL is not installed: apt-get install -y postgresql (Debian), or set KOEKJE_PG_BIN to its bin directory"

// Shared returns the cluster the test binaries of a run share, starting it
// if none runs; call StopShared from TestMain. Without PostgreSQL it skips
// tb (fails under CI).
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	once.Do(func() {
		bin, err := findBin()
		if err != nil {
			startup = err
			return
		}
		shared, startup = join(defaultBase(), bin)
	})
	if startup != nil {
		refuse(tb, startup)
	}
	return shared
}

// defaultBase is the directory of the shared cluster, one per user.
func defaultBase() string {
	return filepath.Join(memDir(), fmt.Sprintf("koekje-pg-shared-%d", os.Geteuid()))
}

// memDir is /dev/shm where it is big enough (2 GiB: a run's databases take
// hundreds of MB there), else the temporary directory. Every database a
// test makes is hundreds of files: on ext4 making one took ten times the
// CPU it takes in memory (0.26 s against 0.03), mostly the kernel choosing
// inodes. The size decides, not the free space, so that every process of
// a run chooses the same.
func memDir() string {
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &fs); err == nil && uint64(fs.Blocks)*uint64(fs.Bsize) >= 2<<30 {
		return "/dev/shm"
	}
	return os.TempDir()
}

// refuse skips tb when PostgreSQL is missing, unless under CI, and fails
// it otherwise.
func refuse(tb testing.TB, err error) {
	tb.Helper()
	if errors.As(err, new(errMissing)) && os.Getenv("CI") != "true" {
		tb.Skip(hint)
		return
	}
	tb.Fatalf("PostgreSQL: %v", err)
}

// StopShared leaves the shared cluster, if this process used it: the last
// process to leave stops it.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

type errMissing struct{}

func (errMissing) Error() string { return hint }

// Start makes and starts a cluster of its own, which Stop removes. fsync
// off makes tests faster; load measurements start one with fsync on.
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
	if err := c.start(fsync); err != nil {
		c.remove()
		return nil, err
	}
	return c, nil
}

// start makes the cluster in c.dir and starts it.
func (c *Cluster) start(fsync bool) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	if c.asUser {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return err
		}
		if err := os.Chmod(c.dir, 0o700); err != nil {
			return err
		}
	}
	data := filepath.Join(c.dir, "data")
	if out, err := c.run("initdb", "-D", data, "-A", "trust", "-U", "koekje", "--no-sync", "-E", "UTF8", "--locale", "C"); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, out)
	}
	// max_connections: the test binaries of a run share the cluster.
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories=%s -p %d -c max_connections=600 -c fsync=%s -c shared_buffers=128MB",
		c.dir, port, map[bool]string{true: "on", false: "off"}[fsync])
	if out, err := c.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return nil
}

// DSN is the connection string of a database of the cluster.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://koekje@/%s?host=%s&port=%d&sslmode=disable", db, c.dir, port)
}

// NewDatabase makes an empty database for tb and returns its DSN.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	return c.newDatabase(tb, "")
}

// newDatabase makes a database for tb, a copy of template ("" for
// PostgreSQL's own empty one), and returns its DSN.
func (c *Cluster) newDatabase(tb testing.TB, template string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	from := ""
	if template != "" {
		from = " TEMPLATE " + template
	}
	for {
		// An earlier process that used the cluster may have had this pid.
		name := fmt.Sprintf("t%d_%d", os.Getpid(), c.count.Add(1))
		_, err := conn.Exec(ctx, "CREATE DATABASE "+name+from)
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42P04" {
			continue
		}
		if err != nil {
			tb.Fatalf("create database %s%s: %v", name, from, err)
		}
		return c.DSN(name)
	}
}

// Stop stops a cluster from Start and removes its files; this process
// leaves the shared cluster, stopping it if it was the last to use it.
func (c *Cluster) Stop() {
	stop := c.remove
	if c.base != "" {
		stop = c.leave
	}
	if err := stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stop the cluster in %s: %v\n", c.dir, err)
	}
}

// remove stops the postmaster running in c.dir, if one does, and removes
// the directory.
func (c *Cluster) remove() error {
	data := filepath.Join(c.dir, "data")
	if pid := postmaster(data); pid != 0 {
		c.run("pg_ctl", "-D", data, "-m", "immediate", "-w", "-t", "30", "stop")
		// pg_ctl returns once the pid file is gone, a moment before the
		// process ends, or at once if it fails: wait for the process, and
		// kill it if it does not end.
		for deadline := time.Now().Add(10 * time.Second); runsIn(pid, data); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
	return os.RemoveAll(c.dir)
}

// postmaster returns the pid of the postmaster running in the data
// directory, or 0.
func postmaster(data string) int {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || !runsIn(pid, data) {
		return 0
	}
	return pid
}

// runsIn reports whether the process pid works in the directory dir, as a
// postmaster works in its data directory, so that a pid in a stale pid file
// that another process now has is never signalled. Without /proc it only
// reports whether pid runs.
func runsIn(pid int, dir string) bool {
	want, err := filepath.EvalSymlinks(dir)
	if err != nil || pid <= 0 {
		return false
	}
	if _, err := os.Stat("/proc/self/cwd"); err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	return err == nil && cwd == want
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
