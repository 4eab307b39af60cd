package chromium

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// messages joins messages as the pipe carries them, each ending with a
// zero byte.
func messages(ms ...string) []byte {
	var b bytes.Buffer
	for _, m := range ms {
		b.WriteString(m)
		b.WriteByte(0)
	}
	return b.Bytes()
}

func TestFilterMessages(t *testing.T) {
	big := strings.Repeat("x", 300)
	l := limits{event: 200, reply: 400}
	dialog := `{"method":"Page.javascriptDialogOpening","params":{"message":"` + big + `"},"sessionId":"AB12"}`
	answer := `{"id":7,"result":{"v":"` + big + big + `"},"sessionId":"AB12"}`
	for _, tc := range []struct {
		name    string
		in, out []string
	}{
		{"small ones pass", []string{`{"id":1,"result":{}}`, `{"method":"Page.loadEventFired","params":{},"sessionId":"AB12"}`},
			[]string{`{"id":1,"result":{}}`, `{"method":"Page.loadEventFired","params":{},"sessionId":"AB12"}`}},
		{"unused events are dropped", []string{`{"method":"Runtime.consoleAPICalled","params":{"x":"` + big + `"},"sessionId":"AB12"}`, `{"method":"Log.entryAdded","params":{}}`},
			nil},
		{"an event of a tab over its limit", []string{dialog},
			[]string{`{"method":"Koekje.messageCut","params":{"method":"Page.javascriptDialogOpening","size":` + strconv.Itoa(len(dialog)) + `},"sessionId":"AB12"}`}},
		{"an event of the browser over its limit", []string{`{"method":"Target.targetInfoChanged","params":{"title":"` + big + `"}}`},
			nil},
		{"an answer over the event's limit", []string{`{"id":7,"result":{"v":"` + big + `"},"sessionId":"AB12"}`},
			[]string{`{"id":7,"result":{"v":"` + big + `"},"sessionId":"AB12"}`}},
		{"an answer over its limit", []string{answer},
			[]string{`{"id":7,"error":{"code":-32000,"message":"koekje scan: the browser's answer of ` + strconv.Itoa(len(answer)) + ` bytes is over the scanner's limit of 400"},"sessionId":"AB12"}`}},
		{"a string that looks like a session", []string{`{"method":"Page.frameNavigated","params":{"u":"` + big + `\",\"sessionId\":\"EVIL"}}`},
			nil},
		{"an empty message", []string{``, `{"id":2,"result":{}}`}, []string{`{"id":2,"result":{}}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			// One byte a read: a message comes in as many pieces.
			if err := l.filter(iotest.OneByteReader(bytes.NewReader(messages(tc.in...))), &out); !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if got, want := out.String(), string(messages(tc.out...)); got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

// FuzzFilterMessages feeds the filter any bytes: it passes on a message
// whole or as a stand-in of valid JSON under the limit, never more
// messages than came, and nothing after the input's last zero byte.
func FuzzFilterMessages(f *testing.F) {
	f.Add(messages(`{"id":1,"result":{}}`, `{"method":"Page.loadEventFired","params":{},"sessionId":"AB"}`))
	f.Add(messages(`{"method":"Page.javascriptDialogOpening","params":{"message":"` + strings.Repeat("y", 100) + `"},"sessionId":"S1"}`))
	f.Add(messages(`{"id":12,"result":{"v":"`+strings.Repeat("z", 200)+`"},"sessionId":"S1"}`, `{"method":"Runtime.consoleAPICalled"}`))
	f.Add([]byte("\x00\x00{\"id\":\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		l := limits{event: 64, reply: 128}
		var out bytes.Buffer
		l.filter(bytes.NewReader(in), &out)
		sent := bytes.Split(out.Bytes(), []byte{0})
		if len(out.Bytes()) > 0 && out.Bytes()[out.Len()-1] != 0 {
			t.Fatalf("output does not end with a zero byte: %q", out.Bytes())
		}
		came := bytes.Count(in, []byte{0})
		if len(sent)-1 > came {
			t.Fatalf("%d messages out of %d", len(sent)-1, came)
		}
		msgs := bytes.Split(in, []byte{0})
		for _, m := range sent[:len(sent)-1] {
			if int64(len(m)) <= l.reply && slices.ContainsFunc(msgs[:len(msgs)-1], func(x []byte) bool { return bytes.Equal(x, m) }) {
				continue // passed on whole
			}
			if !json.Valid(m) || len(m) > 512 {
				t.Fatalf("stand-in %q is not valid JSON of a few hundred bytes", m)
			}
		}
	})
}
