package server

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/koekje/koekje/server/export"
)

// lineHandler is the slog handler of the request log: one JSON object a
// line, in the shape of slog's JSONHandler (time in UTC to the millisecond,
// level, msg, then the attributes), written by hand because every request
// passes through it. Attributes are flat; strings, integers and durations
// (in nanoseconds, as slog writes them) keep their type, anything else is
// written as its string.
type lineHandler struct {
	mu *sync.Mutex
	w  io.Writer
}

func newAccessLog(w io.Writer) slog.Handler {
	if w == nil {
		return slog.DiscardHandler
	}
	return lineHandler{mu: new(sync.Mutex), w: w}
}

func (lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

// WithAttrs and WithGroup are not used on the request log; a logger made
// from it with either still writes its records, without those additions'
// nesting.
func (h lineHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h lineHandler) WithGroup(string) slog.Handler      { return h }

var lines = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func (h lineHandler) Handle(_ context.Context, r slog.Record) error {
	bp := lines.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = appendMillis(b, r.Time)
	b = append(b, `","level":`...)
	b = export.AppendJSONString(b, r.Level.String())
	b = append(b, `,"msg":`...)
	b = export.AppendJSONString(b, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b = append(b, ',')
		b = export.AppendJSONString(b, a.Key)
		b = append(b, ':')
		switch v := a.Value.Resolve(); v.Kind() {
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindDuration:
			b = strconv.AppendInt(b, int64(v.Duration()), 10)
		case slog.KindTime:
			b = append(b, '"')
			b = v.Time().UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		default:
			b = export.AppendJSONString(b, v.String())
		}
		return true
	})
	b = append(b, "}\n"...)
	h.mu.Lock()
	_, err := h.w.Write(b)
	h.mu.Unlock()
	*bp = b
	lines.Put(bp)
	return err
}

// appendMillis appends t in UTC as 2006-01-02T15:04:05.000Z, what
// AppendFormat makes of that layout, without parsing the layout each time.
func appendMillis(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	}
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	b = append2(b, int(month), '-')
	b = append2(b, day, 'T')
	b = append2(b, hour, ':')
	b = append2(b, minute, ':')
	b = append2(b, sec, '.')
	ms := t.Nanosecond() / 1e6
	return append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

func append2(b []byte, n int, sep byte) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10), sep)
}
