package server

import (
	"bytes"
	"flag"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/server/consent"
)

var updateGolden = flag.Bool("update-svg", false, "rewrite the chart golden files")

// An expired session cookie is refused even though its MAC is good.
func TestExpiredSession(t *testing.T) {
	t.Parallel()
	ss := newSessions(bytes.Repeat([]byte{3}, 64))
	e := echo.New()
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest("GET", "/admin", nil), rec)
	past := time.Now().Add(-9 * time.Hour)
	if err := ss.start(c, "admin", past); err != nil {
		t.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0]
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{{past.Add(time.Hour), true}, {time.Now(), false}} {
		req := httptest.NewRequest("GET", "/admin", nil)
		req.AddCookie(cookie)
		got := ss.get(e.NewContext(req, httptest.NewRecorder()), tt.at) != nil
		if got != tt.want {
			t.Errorf("session valid at %s = %v, want %v", tt.at, got, tt.want)
		}
	}
	forged := *cookie
	forged.Value = cookie.Value[:len(cookie.Value)-4] + "AAAA"
	req := httptest.NewRequest("GET", "/admin", nil)
	req.AddCookie(&forged)
	if ss.get(e.NewContext(req, httptest.NewRecorder()), past) != nil {
		t.Error("a forged session cookie passed")
	}
}

func TestChartGolden(t *testing.T) {
	t.Parallel()
	days := []consent.DayStats{
		{Day: "2026-03-01", Total: 10, GPC: 1, Actions: map[string]int{"accept_all": 6, "reject_all": 3, "custom": 1}, Granted: map[string]int{"necessary": 10, "analytics": 7, "embeds": 6}},
		{Day: "2026-03-02", Total: 4, Actions: map[string]int{"accept_all": 1, "reject_all": 2, "custom": 1}, Granted: map[string]int{"necessary": 4, "analytics": 2, "embeds": 1}},
		{Day: "2026-03-03", Total: 0, Actions: map[string]int{}, Granted: map[string]int{}},
	}
	choices, shares := consentCharts(days, []string{"necessary", "analytics", "embeds"}, map[string]string{"necessary": "Necessary", "analytics": "Statistics", "embeds": "Embedded content"})
	for name, got := range map[string]string{"testdata/chart-choices.svg": string(choices), "testdata/chart-shares.svg": string(shares)} {
		if *updateGolden {
			os.WriteFile(name, []byte(got), 0o644)
		}
		want, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s differs:\n%s", name, got)
		}
	}
}
