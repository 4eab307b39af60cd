// Package cputime reads the CPU time the process has used, for benchmarks
// on a shared machine: the time a benchmark waits for a core or a disk moves
// its ns/op, not the CPU time each operation costs.
package cputime

import (
	"syscall"
	"time"
)

// Process is the CPU time, user and system, all threads of the process
// have used so far.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
