package server

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
)

var updateGolden = flag.Bool("update-svg", false, "rewrite the chart golden files")

// An expired session cookie is refused even though its MAC is good.
func TestExpiredSession(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "k.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := proof.OpenKeys(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Deps{Config: config.Demo(), Store: db, Keys: keys,
		TokenKey: bytes.Repeat([]byte{3}, 64), AdminToken: "an-admin-token-of-enough-length", PublicURL: "http://example.com"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c := s.echo.NewContext(httptest.NewRequest("GET", "/admin", nil), rec)
	past := time.Now().Add(-9 * time.Hour)
	_, _, sum := s.admins.find("an-admin-token-of-enough-length")
	if err := s.startSession(c, "admin", sum, past); err != nil {
		t.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0]
	get := func(ck *http.Cookie, at time.Time) *session {
		req := httptest.NewRequest("GET", "/admin", nil)
		req.AddCookie(ck)
		sess, err := s.session(s.echo.NewContext(req, httptest.NewRecorder()), at)
		if err != nil {
			t.Fatal(err)
		}
		return sess
	}
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{{past.Add(time.Hour), true}, {time.Now(), false}} {
		if got := get(cookie, tt.at) != nil; got != tt.want {
			t.Errorf("session valid at %s = %v, want %v", tt.at, got, tt.want)
		}
	}
	forged := *cookie
	forged.Value = cookie.Value[:len(cookie.Value)-4] + "AAAA"
	if get(&forged, past.Add(time.Hour)) != nil {
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
