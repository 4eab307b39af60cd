package server

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestChoiceMediaType(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"application/json":           true,
		"text/plain":                 true,
		"text/plain;charset=UTF-8":   true,
		"Application/JSON":           true,
		"application/json; charset":  false,
		"application/json;;":         false,
		"text/html":                  false,
		"application/x-www-form-url": false,
		"":                           false,
	} {
		if got := choiceMediaType(ct); got != want {
			t.Errorf("choiceMediaType(%q) = %v, want %v", ct, got, want)
		}
	}
}

// readAll gives the same bytes as io.ReadAll whatever the first guess of
// the size and however the reader splits its data.
func TestReadAll(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("koekje ", 300)
	for _, size := range []int{1, 2, 100, len(body), len(body) + 1, 4096} {
		for name, r := range map[string]func() io.Reader{
			"whole":    func() io.Reader { return strings.NewReader(body) },
			"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) },
			"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(body)) },
		} {
			got, err := readAll(r(), size)
			if err != nil || !bytes.Equal(got, []byte(body)) {
				t.Errorf("size %d, %s: %d bytes, %v", size, name, len(got), err)
			}
		}
	}
	if _, err := readAll(iotest.ErrReader(io.ErrClosedPipe), 8); err != io.ErrClosedPipe {
		t.Errorf("error not passed on: %v", err)
	}
}
