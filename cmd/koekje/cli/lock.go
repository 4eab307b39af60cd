package cli

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockServe takes the database's serve lock: one server per SQLite file,
// since its writer keeps each chain's head in memory. Auditor commands may
// run beside it and take no lock. The lock is an flock on path+".lock",
// which the kernel drops when the process ends, however it ends.
func lockServe(path string) (release func(), err error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("serve lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another koekje serve is using %s (it holds %s); run one server per database file", path, name)
		}
		return nil, fmt.Errorf("serve lock: %w", err)
	}
	return func() { f.Close() }, nil
}
