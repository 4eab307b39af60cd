package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// With PGTEST_JOIN set, the test binary is a process that joins the
// cluster shared in that directory, prints its system identifier and
// postmaster's pid, and leaves once its stdin closes.
func TestMain(m *testing.M) {
	if base := os.Getenv("PGTEST_JOIN"); base != "" {
		os.Exit(joinAndWait(base))
	}
	os.Exit(m.Run())
}

func joinAndWait(base string) int {
	bin, err := findBin()
	if err == nil {
		var c *Cluster
		if c, err = join(base, bin); err == nil {
			var id int64
			if id, err = systemID(c); err == nil {
				fmt.Printf("%d %d\n", id, postmaster(filepath.Join(c.dir, "data")))
				io.Copy(io.Discard, os.Stdin)
				err = c.leave()
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// systemID is the identifier initdb gave the cluster: another one is
// another cluster.
func systemID(c *Cluster) (int64, error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var id int64
	err = conn.QueryRow(ctx, `SELECT system_identifier FROM pg_control_system()`).Scan(&id)
	return id, err
}

// testBase is a directory for a shared cluster of the test's own, removed
// with whatever runs in it when the test ends.
func testBase(t *testing.T) (base, bin string) {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		refuse(t, err)
	}
	// Not t.TempDir: the postgres user passes through it.
	base, err = os.MkdirTemp(memDir(), "koekje-pg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		(&Cluster{dir: filepath.Join(base, "cluster"), bin: bin, asUser: os.Geteuid() == 0}).remove()
		os.RemoveAll(base)
	})
	return base, bin
}

// process is a test binary that joins the cluster in a directory.
type process struct {
	cmd        *exec.Cmd
	stdin      io.WriteCloser
	line       chan string
	id         int64 // once joined
	postmaster int
}

func startJoining(t *testing.T, base string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PGTEST_JOIN="+base)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	p := &process{cmd: cmd, stdin: stdin, line: make(chan string, 1)}
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		p.line <- line
	}()
	return p
}

// joined waits until p has joined.
func (p *process) joined(t *testing.T) {
	t.Helper()
	select {
	case line := <-p.line:
		if _, err := fmt.Sscan(line, &p.id, &p.postmaster); err != nil || p.postmaster == 0 {
			t.Fatalf("a process joining the cluster said %q (%v)", line, err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("a process did not join the cluster within two minutes")
	}
}

// leave has p leave the cluster and waits for it to end.
func (p *process) leave(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("a process leaving the cluster: %v", err)
	}
}

// kill ends p without leaving, as a killed test run ends.
func (p *process) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// The life of a shared cluster, in steps that each start from where the
// one before left it (each initdb takes seconds): two processes starting
// at once make one cluster; it runs while one of them does; a killed
// run's cluster is replaced by the next process to start one, whether its
// postmaster runs on or died too; a process that starts meanwhile joins
// the new one, and one that starts as the last user leaves gets a running
// cluster; and the last one to leave stops it and removes it.
func TestSharedCluster(t *testing.T) {
	base, bin := testBase(t)
	data := filepath.Join(base, "cluster", "data")

	a, b := startJoining(t, base), startJoining(t, base)
	a.joined(t)
	b.joined(t)
	if a.id != b.id || a.postmaster != b.postmaster {
		t.Fatalf("two processes started clusters %d (postmaster %d) and %d (postmaster %d), want one", a.id, a.postmaster, b.id, b.postmaster)
	}
	a.leave(t)
	if postmaster(data) != b.postmaster {
		t.Fatal("the cluster stopped when one of its two users left")
	}

	// A killed run leaves its postmaster running.
	b.kill(t)
	if ended(b.postmaster) {
		t.Fatal("the postmaster stopped with the process that started it: nothing is stale")
	}
	c := joinReplacing(t, base, bin, b)
	d := startJoining(t, base)
	d.joined(t)
	if cID, _ := systemID(c); d.id != cID {
		t.Errorf("a process joined cluster %d beside one that uses %d", d.id, cID)
	}

	// A killed run whose postmaster died too leaves the cluster's files, a
	// pid file naming a dead process among them. (The postmaster is stopped
	// and its pid file put back: killed, it would leave its shared memory
	// in the system.)
	d.kill(t)
	c.users.Close() // as the kernel does when the process ends
	stale := &process{postmaster: postmaster(data)}
	stale.id, _ = systemID(c)
	pidFile, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(stale.postmaster, syscall.SIGQUIT)
	if !gone(stale.postmaster) {
		t.Fatal("the stopped postmaster still runs")
	}
	if err := os.WriteFile(filepath.Join(data, "postmaster.pid"), pidFile, 0o600); err != nil {
		t.Fatal(err)
	}
	e := joinReplacing(t, base, bin, stale)
	f := startJoining(t, base)
	f.joined(t)
	f.leave(t)
	if _, err := systemID(e); err != nil {
		t.Fatalf("the cluster stopped when one of its two users left: %v", err)
	}

	// The last one leaving as another starts: the one starting waits for
	// it, and gets a running cluster, the one it found or a new one.
	g := startJoining(t, base)
	if err := e.leave(); err != nil {
		t.Fatal(err)
	}
	g.joined(t)
	g.leave(t)
	if !gone(g.postmaster) {
		t.Error("the postmaster runs on after the last user left")
	}
	if _, err := os.Stat(filepath.Join(base, "cluster")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cluster's directory is still there after the last user left (%v)", err)
	}
}

// joinReplacing joins the cluster in base, which must replace the one old
// left there.
func joinReplacing(t *testing.T, base, bin string, old *process) *Cluster {
	t.Helper()
	c, err := join(base, bin)
	if err != nil {
		t.Fatalf("start over a stale cluster: %v", err)
	}
	id, err := systemID(c)
	if err != nil {
		t.Fatal(err)
	}
	if id == old.id {
		t.Errorf("the stale cluster %d was joined, not replaced", id)
	}
	if !gone(old.postmaster) {
		t.Errorf("the stale cluster's postmaster %d still runs", old.postmaster)
	}
	return c
}

// gone reports whether the process pid has ended, waiting a few seconds
// for it to.
func gone(pid int) bool {
	for deadline := time.Now().Add(5 * time.Second); !ended(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// ended reports whether the process pid has ended (a zombie has).
func ended(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// A template is made once per cluster and key, even by several processes
// at once, and every database made from it starts as a copy of it that
// tests change alone; another key makes another template.
func TestTemplate(t *testing.T) {
	bin, err := findBin()
	if err != nil {
		refuse(t, err)
	}
	// The run's shared cluster, joined twice: two files hold users, as two
	// processes would, and neither knows a template yet.
	var clusters []*Cluster
	for range 2 {
		c, err := join(defaultBase(), bin)
		if err != nil {
			t.Fatal(err)
		}
		clusters = append(clusters, c)
		defer c.leave()
	}
	run := fmt.Sprintf("%s %d", time.Now().Format(time.RFC3339Nano), os.Getpid()) // keys no run made before
	var makes atomic.Int64
	template := func(key string) Template {
		return Template{Key: run + key, Make: func(ctx context.Context, dsn string) error {
			makes.Add(1)
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			// Slow enough that the makers meet.
			_, err = conn.Exec(ctx, `SELECT pg_sleep(0.2); CREATE TABLE made (key text); INSERT INTO made VALUES ('`+key+`')`)
			return err
		}}
	}
	v1 := template("v1")
	ctx := context.Background()
	var wg sync.WaitGroup
	names := make([]string, 4)
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { names[i], errs[i] = clusters[i%2].template(ctx, v1) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := makes.Load(); n != 1 {
		t.Errorf("the template was made %d times, want once", n)
	}
	dsns := make([]string, 4)
	for i := range dsns {
		dsns[i] = clusters[i%2].NewDatabaseFrom(t, v1)
	}
	query := func(dsn, q string, args ...any) string {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var s string
		if err := conn.QueryRow(ctx, q, args...).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return s
	}
	query(dsns[0], `INSERT INTO made VALUES ('changed') RETURNING key`)
	for i, dsn := range dsns {
		want := "v1"
		if i == 0 {
			want = "changed,v1"
		}
		if got := query(dsn, `SELECT string_agg(key, ',' ORDER BY key) FROM made`); got != want {
			t.Errorf("database %d holds %q, want %q", i, got, want)
		}
	}
	if got := query(clusters[0].DSN("postgres"), `SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE $1`, names[0]+"%"); got != names[0] {
		t.Errorf("databases %s, want the template %s alone", got, names[0])
	}
	v2 := clusters[0].NewDatabaseFrom(t, template("v2"))
	if got := query(v2, `SELECT string_agg(key, ',') FROM made`); got != "v2" || makes.Load() != 2 {
		t.Errorf("a new key's database holds %q after %d makes, want v2 after 2", got, makes.Load())
	}
	if got := query(clusters[1].NewDatabase(t), `SELECT count(*)::text FROM pg_tables WHERE tablename = 'made'`); got != "0" {
		t.Error("NewDatabase made a database from a template, not an empty one")
	}
}

// Without PostgreSQL a test is skipped with the install hint, but fails
// under CI; any other trouble fails it.
func TestRefuse(t *testing.T) {
	for _, c := range []struct {
		ci   string
		err  error
		want string
	}{
		{"", errMissing{}, "skip: " + hint},
		{"true", errMissing{}, "fail: PostgreSQL: " + hint},
		{"", errors.New("initdb: exit status 1"), "fail: PostgreSQL: initdb: exit status 1"},
	} {
		t.Setenv("CI", c.ci)
		var r recorder
		refuse(&r, c.err)
		if r.got != c.want {
			t.Errorf("CI=%q, %v: %q, want %q", c.ci, c.err, r.got, c.want)
		}
	}
}

// recorder is a testing.TB that notes how it was ended.
type recorder struct {
	testing.TB
	got string
}

func (r *recorder) Helper()          {}
func (r *recorder) Skip(args ...any) { r.got = "skip: " + fmt.Sprint(args...) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.got = "fail: " + fmt.Sprintf(format, args...)
}
