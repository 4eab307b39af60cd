package chromium

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"
)

// cmdOptions start the browser as chromedp does on Linux (killed with the
// program), as the user as says (nil: the program's), with filterMessages
// on its DevTools pipe.
func cmdOptions(as *account) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = new(syscall.SysProcAttr)
		}
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		if as != nil {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: as.uid, Gid: as.gid}
		}
		if err := filterPipe(cmd); err != nil {
			cmd.Err = fmt.Errorf("filter the DevTools pipe: %w", err)
		}
	})}
}

// unprivileged is the account the browser runs as when the scanner runs
// as root: nobody, when there is one.
func unprivileged() *account {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil || uid == 0 {
		return nil
	}
	return &account{uint32(uid), uint32(gid)}
}

// filterPipe puts filterMessages between the browser and chromedp: the
// browser writes its messages to its file descriptor 4, which chromedp's
// ExecAllocator has made the second of cmd's extra files before it calls
// ModifyCmdFunc. The browser gets a new pipe instead, and the filter
// copies from it to the one chromedp reads.
func filterPipe(cmd *exec.Cmd) error {
	if len(cmd.ExtraFiles) != 2 {
		return nil // chromedp speaks over a websocket: no pipe to filter
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	// chromedp closes its copy of the browser's end once the browser has
	// started, so the filter writes to a copy of its own.
	fd, err := syscall.Dup(int(cmd.ExtraFiles[1].Fd()))
	if err != nil {
		r.Close()
		w.Close()
		return err
	}
	syscall.CloseOnExec(fd)
	out := os.NewFile(uintptr(fd), "devtools-out")
	cmd.ExtraFiles[1] = w
	// exec.Cmd reads a Stdin that is no file only once the process has
	// started: that first read says the browser holds its own copy of w,
	// so the filter's can go, and r ends as soon as the browser's does. A
	// browser that fails to start is then an error at once, not after the
	// minute the filter would keep w otherwise (for a Start that failed,
	// which reads nothing).
	started := make(chan struct{})
	cmd.Stdin = &startSignal{started: started}
	go func() {
		go func() {
			select {
			case <-started:
			case <-time.After(time.Minute):
			}
			w.Close()
		}()
		filterMessages(r, out)
		r.Close()
		out.Close()
	}()
	return nil
}

// startSignal is the browser's standard input: empty, and its first read
// closes started.
type startSignal struct {
	once    sync.Once
	started chan struct{}
}

func (s *startSignal) Read([]byte) (int, error) {
	s.once.Do(func() { close(s.started) })
	return 0, io.EOF
}
