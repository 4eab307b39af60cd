package pgtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// join starts the cluster shared in base, or joins it if other processes
// use it, and holds users shared until leave.
func join(base, bin string) (*Cluster, error) {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	// The name is easy to guess: it must be this user's directory, not a
	// link or another user's.
	fi, err := os.Lstat(base)
	if err != nil {
		return nil, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("%s is not a directory of this user's", base)
	}
	// The postgres user passes through it to its cluster.
	if err := os.Chmod(base, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lock(filepath.Join(base, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	users, err := os.OpenFile(filepath.Join(base, "users"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: filepath.Join(base, "cluster"), bin: bin, asUser: os.Geteuid() == 0, base: base, users: users}
	fail := func(err error) (*Cluster, error) {
		users.Close()
		return nil, err
	}
	started := false
	switch err := syscall.Flock(int(users.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		// Nobody uses what is there: nothing, or a killed run's cluster.
		if err := c.remove(); err != nil {
			return fail(fmt.Errorf("remove a stale cluster: %w", err))
		}
		if err := c.start(false); err != nil {
			c.remove()
			return fail(err)
		}
		started = true
	case errors.Is(err, syscall.EWOULDBLOCK):
		// Running: a process holds users only once it has started.
	default:
		return fail(fmt.Errorf("lock %s: %w", users.Name(), err))
	}
	// Turning the exclusive lock into a shared one is not atomic, but only
	// holders of lock take users.
	if err := syscall.Flock(int(users.Fd()), syscall.LOCK_SH); err != nil {
		if started {
			c.remove()
		}
		return fail(fmt.Errorf("lock %s: %w", users.Name(), err))
	}
	return c, nil
}

// leave stops using the shared cluster, and stops and removes it if no
// other process uses it.
func (c *Cluster) leave() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users == nil {
		return nil
	}
	unlock, err := lock(filepath.Join(c.base, "lock"))
	if err != nil {
		return err
	}
	defer unlock()
	defer func() {
		c.users.Close()
		c.users = nil
	}()
	fd := int(c.users.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_UN); err != nil {
		return err
	}
	switch err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		return c.remove()
	case errors.Is(err, syscall.EWOULDBLOCK):
		return nil
	default:
		return err
	}
}

// lock takes the file at path exclusively, waiting for it, and returns
// what gives it back.
func lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
