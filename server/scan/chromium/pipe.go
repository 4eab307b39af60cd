package chromium

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// Chromium tells the scanner what a page does over the DevTools pipe, and
// the page chooses the size of much of it: an alert's text, a console
// message, a thrown string, a binding's payload, an attribute. chromedp
// reads each message whole, and queues them, so one page could make the
// scanner's memory as large as it likes. The scanner therefore sits on
// the pipe: it drops the events it never reads, and passes any other
// message over a limit on as a small stand-in.
const (
	// maxEvent bounds an event; a URL, which Chromium keeps under 2 MiB,
	// is the largest thing the scanner reads in one.
	maxEvent = 1 << 20
	// maxReply bounds the answer to a command: the largest is the cookie
	// jar (at most 3,300 cookies of 4 KiB in Chromium).
	maxReply = 32 << 20
)

// unusedEvents are the events the scanner does not read whose size the
// page chooses: they are dropped on the pipe.
var unusedEvents = map[string]bool{
	"Runtime.consoleAPICalled":           true,
	"Runtime.exceptionThrown":            true,
	"Log.entryAdded":                     true,
	"Network.dataReceived":               true,
	"Network.webSocketFrameSent":         true,
	"Network.webSocketFrameReceived":     true,
	"Network.webSocketFrameError":        true,
	"Network.eventSourceMessageReceived": true,
}

// cutEvent is the stand-in for an event of a tab over maxEvent: the tab
// hears what it missed.
const cutEvent = "Koekje.messageCut"

// cutParams are cutEvent's parameters.
type cutParams struct {
	Method string `json:"method"`
	Size   int64  `json:"size"`
}

// limits are the largest event and answer passed on whole.
type limits struct{ event, reply int64 }

// filterMessages copies the browser's messages from in to out with the
// limits maxEvent and maxReply.
func filterMessages(in io.Reader, out io.Writer) error {
	return limits{maxEvent, maxReply}.filter(in, out)
}

// filter copies the browser's messages from in to out: each ends with a
// zero byte (inside the JSON a zero is escaped). A message over its limit
// is read to its end without being kept, and passed on as a stand-in: an
// error answer to its command, or a cutEvent for the tab it was for
// (nothing for the browser's own events). The unused events are dropped.
// It returns when in ends or out fails.
func (l limits) filter(in io.Reader, out io.Writer) error {
	br := bufio.NewReaderSize(in, 64<<10)
	var msg []byte
	var size int64
	var head, tail []byte // of a message over its limit: enough to name it
	over, skip := false, false
	for {
		chunk, err := br.ReadSlice(0)
		end := err == nil
		if end {
			chunk = chunk[:len(chunk)-1]
		} else if err != bufio.ErrBufferFull {
			return err
		}
		size += int64(len(chunk))
		switch {
		case skip:
		case over:
			tail = keepTail(tail, chunk)
		case int64(len(msg))+int64(len(chunk)) > l.of(msg, chunk):
			over = true
			head = append(append(head[:0], prefix(msg, 128)...), prefix(chunk, 128-min(len(msg), 128))...)
			tail = keepTail(keepTail(tail[:0], msg), chunk)
			msg = msg[:0]
		default:
			msg = append(msg, chunk...)
			// An unused event is known by its start, and not kept.
			skip = len(msg) >= 128 && unusedEvents[methodOf(msg)]
		}
		if !end {
			continue
		}
		var send []byte
		switch {
		case over:
			send = l.standIn(head, tail, size)
		case !skip && !unusedEvents[methodOf(msg)]:
			send = msg
		}
		if len(send) > 0 {
			if _, err := out.Write(append(send, 0)); err != nil {
				return err
			}
		}
		// A buffer grown for a large answer is not kept for the next,
		// small, message.
		if int64(cap(msg)) > 2*l.event {
			msg = nil
		}
		msg, size, over, skip = msg[:0], 0, false, false
	}
}

// of is the limit of the message that starts with msg and chunk: an
// answer has the larger one.
func (l limits) of(msg, chunk []byte) int64 {
	var start [6]byte
	n := copy(start[:], msg)
	n += copy(start[n:], chunk)
	if n < len(start) || string(start[:]) == `{"id":` {
		return max(l.reply, l.event)
	}
	return l.event
}

func prefix(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// keepTail appends chunk to tail, keeping its last 128 bytes.
func keepTail(tail, chunk []byte) []byte {
	const n = 128
	if len(chunk) >= n {
		return append(tail[:0], chunk[len(chunk)-n:]...)
	}
	tail = append(tail, chunk...)
	if len(tail) > n {
		tail = append(tail[:0], tail[len(tail)-n:]...)
	}
	return tail
}

// methodOf is an event's method: Chromium writes it first.
func methodOf(msg []byte) string {
	rest, ok := bytes.CutPrefix(msg, []byte(`{"method":"`))
	if !ok {
		return ""
	}
	m, _, ok := bytes.Cut(prefix(rest, 100), []byte(`"`))
	if !ok || !plain(m, '.') {
		return ""
	}
	return string(m)
}

// standIn is what a message over its limit becomes: its head and tail
// (Chromium writes the command's id or the event's method first, and the
// session last) say what it was.
func (l limits) standIn(head, tail []byte, size int64) []byte {
	session := ""
	if i := bytes.LastIndex(tail, []byte(`"sessionId":"`)); i >= 0 {
		s, _, ok := bytes.Cut(tail[i+len(`"sessionId":"`):], []byte(`"`))
		if ok && plain(s, 0) {
			session = `,"sessionId":"` + string(s) + `"`
		}
	}
	if rest, ok := bytes.CutPrefix(head, []byte(`{"id":`)); ok {
		digits, _, _ := bytes.Cut(rest, []byte(","))
		id, err := strconv.ParseInt(string(digits), 10, 64)
		if err != nil || id <= 0 {
			return nil
		}
		return fmt.Appendf(nil, `{"id":%d,"error":{"code":-32000,"message":"koekje scan: the browser's answer of %d bytes is over the scanner's limit of %d"}%s}`,
			id, size, l.reply, session)
	}
	m := methodOf(head)
	if m == "" || session == "" || unusedEvents[m] {
		return nil
	}
	return fmt.Appendf(nil, `{"method":%q,"params":{"method":%q,"size":%d}%s}`, cutEvent, m, size, session)
}

// plain reports whether b is a non-empty run of letters and digits (and
// of extra, when not 0): a method or session ID, nothing to escape.
func plain(b []byte, extra byte) bool {
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || extra != 0 && c == extra) {
			return false
		}
	}
	return len(b) > 0
}
