package chromium

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Run as root, the scanner starts Chromium as nobody, with its sandbox
// (the kernel here allows it): a browser exploit on a scanned page does
// not get root.
func TestBrowserUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the scanner runs the browser as another user only when it runs as root")
	}
	chrome := ChromePath(os.Getenv)
	if _, err := os.Stat(chrome); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Chromium at %s", chrome)
		}
		t.Skipf("no Chromium at %s", chrome)
	}
	as := unprivileged()
	if as == nil {
		t.Skip("no user nobody")
	}
	b, err := startBrowser(context.Background(), &Options{Chrome: chrome})
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	pid := chromedp.FromContext(b.ctx).Browser.Process().Pid
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var uids string
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			uids = strings.Join(strings.Fields(rest), " ")
		}
	}
	want := strconv.Itoa(int(as.uid))
	if uids != strings.Repeat(want+" ", 3)+want {
		t.Errorf("the browser runs with uids %q, want %s (nobody) for all four", uids, want)
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if strings.Contains(string(cmdline), "--no-sandbox") {
		t.Errorf("the browser runs without its sandbox: %q", strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	// It still browses.
	tctx, cancel := chromedp.NewContext(b.ctx)
	defer cancel()
	got, err := chromedp.Run(tctx, chromedp.Evaluate[int](`6 * 7`))
	if err != nil || got != 42 {
		t.Errorf("evaluate: %d, %v", got, err)
	}
}

// A browser that fails to start is an error as soon as it exits: the
// filter on the DevTools pipe does not keep its end open for chromedp to
// wait on (it did for a minute, twice when run as root).
func TestBrowserFailsToStart(t *testing.T) {
	t.Parallel()
	type result struct {
		b   *browser
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := startBrowser(context.Background(), &Options{Chrome: "/bin/false"})
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			r.b.close()
			t.Fatal("a browser that exits at once started")
		}
		if !strings.Contains(r.err.Error(), "failed to start") {
			t.Errorf("error %q, want that it failed to start", r.err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("still starting a browser that exited at once, 45 s later")
	}
}
