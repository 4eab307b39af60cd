//go:build !linux

package scan

import "github.com/chromedp/chromedp"

// cmdOptions are chromedp's own elsewhere: the filter of the DevTools pipe
// runs on Linux only.
var cmdOptions []chromedp.ExecAllocatorOption
