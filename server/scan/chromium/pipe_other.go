//go:build !linux

package chromium

import "github.com/chromedp/chromedp"

// cmdOptions are chromedp's own elsewhere: the filter of the DevTools pipe,
// and running the browser as another user, are Linux only.
func cmdOptions(*account) []chromedp.ExecAllocatorOption { return nil }

func unprivileged() *account { return nil }
