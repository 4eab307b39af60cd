package server

import (
	"strconv"
	"testing"
	"time"
)

// Ten failures in a minute block a network for a minute; each further
// failure doubles the block; a quiet minute after the block forgets it.
func TestFailureCounter(t *testing.T) {
	m := newMemFailures()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range failLimit - 1 {
		m.Fail("203.0.113.0/24", t0.Add(time.Duration(i)*time.Second))
	}
	if w := m.Wait("203.0.113.0/24", t0.Add(10*time.Second)); w != 0 {
		t.Fatalf("blocked after %d failures: %s", failLimit-1, w)
	}
	m.Fail("203.0.113.0/24", t0.Add(10*time.Second))
	if w := m.Wait("203.0.113.0/24", t0.Add(40*time.Second)); w != 30*time.Second {
		t.Errorf("after %d failures: wait %s, want 30s", failLimit, w)
	}
	if w := m.Wait("198.51.100.0/24", t0.Add(40*time.Second)); w != 0 {
		t.Errorf("another network waits %s", w)
	}
	t1 := t0.Add(80 * time.Second) // the block is over, the count is not
	if w := m.Wait("203.0.113.0/24", t1); w != 0 {
		t.Errorf("still blocked after the block: %s", w)
	}
	m.Fail("203.0.113.0/24", t1)
	if w := m.Wait("203.0.113.0/24", t1); w != 2*time.Minute {
		t.Errorf("after one more failure: wait %s, want 2m", w)
	}
	m.Fail("203.0.113.0/24", t1.Add(2*time.Minute))
	if w := m.Wait("203.0.113.0/24", t1.Add(2*time.Minute)); w != 4*time.Minute {
		t.Errorf("after two more failures: wait %s, want 4m", w)
	}
	for range 30 {
		m.Fail("203.0.113.0/24", t1.Add(2*time.Minute))
	}
	if w := m.Wait("203.0.113.0/24", t1.Add(2*time.Minute)); w != failMax {
		t.Errorf("after many failures: wait %s, want the cap %s", w, failMax)
	}
	// A quiet window after the block: forgotten.
	t2 := t1.Add(2*time.Minute + failMax + failWindow)
	m.Fail("203.0.113.0/24", t2)
	if w := m.Wait("203.0.113.0/24", t2); w != 0 {
		t.Errorf("one failure after a quiet window: wait %s", w)
	}
}

// The counter's memory is bounded however many networks fail, and a
// blocked network stays blocked while others flood in.
func TestFailureCounterBounded(t *testing.T) {
	m := newMemFailures()
	m.max = 1000
	now := time.Now()
	for range failLimit {
		m.Fail("blocked", now)
	}
	walks := 0
	for i := range 10 * m.max {
		before := len(m.nets)
		m.Fail(strconv.Itoa(i), now)
		if len(m.nets) < before {
			walks++
		}
		if n := len(m.nets); n > m.max {
			t.Fatalf("%d networks tracked, at most %d", n, m.max)
		}
	}
	if walks > 10*m.max/(m.max/4) {
		t.Errorf("%d evictions for %d new networks: one walk per failure", walks, 10*m.max)
	}
	if m.Wait("blocked", now) == 0 {
		t.Error("a blocked network was forgotten to make room")
	}
}
