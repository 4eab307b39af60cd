package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The README's five-minute path and its troubleshooting are run here as a
// new owner would run them, against the koekje command itself: what the
// README shows is what happens.

// block is one fenced block of Markdown: its language and its text.
type block struct{ lang, text string }

// readmeSection is the text of the README's "## title" section.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// fenced are the fenced blocks of md, in order.
func fenced(md string) []block {
	var out []block
	var cur *block
	for _, line := range strings.Split(md, "\n") {
		fence, isFence := strings.CutPrefix(line, "```")
		switch {
		case isFence && cur == nil:
			cur = &block{lang: fence}
		case isFence:
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	return out
}

// readmeBlock is the first fenced block of a section in the given language
// whose text contains marker.
func readmeBlock(t *testing.T, section, lang, marker string) string {
	t.Helper()
	for _, b := range fenced(readmeSection(t, section)) {
		if b.lang == lang && strings.Contains(b.text, marker) {
			return b.text
		}
	}
	t.Fatalf("README.md: section %q has no %q block with %q", section, lang, marker)
	return ""
}

// minimalConfig is the README's complete minimal configuration.
func minimalConfig(t *testing.T) string {
	t.Helper()
	return readmeBlock(t, "Put it on your site in five minutes", "yaml", "sites:\n")
}

// output runs koekje with args in dir and returns what it wrote.
func output(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := koekje(t, args...)
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// The five-minute path: the README's minimal configuration passes
// check-config with the output the README shows; served by koekje, the
// README's tag on a page shows the banner and keeps Google Analytics back;
// a visitor's "Accept all" loads it, and the choice is there through the
// README's API call and in the console's records.
func TestFiveMinutes(t *testing.T) {
	dir := t.TempDir()
	// The README's site is https://www.example.nl; here the page is served
	// by a local server the browser reaches under the test website's name.
	page := httptest.NewUnstartedServer(nil)
	pageURL := "http://" + hostName + ":" + strings.TrimPrefix(page.Listener.Addr().String(), "127.0.0.1:")
	cfg := minimalConfig(t)
	if !strings.Contains(cfg, "origins: [https://www.example.nl]") {
		t.Fatalf("the README's configuration lists no origin https://www.example.nl:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, "https://www.example.nl]", pageURL+"]", 1)
	if err := os.WriteFile(filepath.Join(dir, "sites.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	want := readmeBlock(t, "Put it on your site in five minutes", "", "configuration is valid")
	if got := output(t, dir, "check-config", "sites.yaml"); got != want {
		t.Errorf("koekje check-config sites.yaml says\n%s\nthe README shows\n%s", got, want)
	}

	p := startKoekje(t, filepath.Join(dir, "koekje.db"), "--config", filepath.Join(dir, "sites.yaml"))
	tag := readmeBlock(t, "Put it on your site in five minutes", "html", "/s/example-nl.js")
	tag = strings.ReplaceAll(tag, "https://consent.example.nl", p.base)
	page.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Example</title>\n%s</head><body><h1>Example B.V.</h1></body></html>", tag)
	})
	page.Start()
	defer page.Close()

	tb := newTab(t)
	tb.do(chromedp.Navigate(pageURL + "/"))
	tb.waitFor(bannerOpen)
	const configured = `dataLayer.some(e => e[0] === 'config' && e[1] === 'G-XXXX')`
	if n := len(tb.requests("googletagmanager.com", true)); n != 0 || eval[bool](tb, configured) {
		t.Errorf("Google Analytics was asked for %d times, or configured, before a choice", n)
	}
	tb.click(button("Accept all"))
	id := tb.consentID()
	tb.waitFor(`window.gaLoads === 1 && ` + configured)

	// The README's call: the site's records through the API.
	call := readmeBlock(t, "Put it on your site in five minutes", "sh", "Authorization: Bearer $TOKEN")
	path := regexp.MustCompile(`https://consent\.example\.nl(\S+)`).FindStringSubmatch(call)
	if path == nil {
		t.Fatalf("no API call in the README: %s", call)
	}
	req, _ := http.NewRequest("GET", p.base+path[1], nil)
	req.Header.Set("Authorization", "Bearer ops-admin-token-of-28-chars")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []map[string]any
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		if _, ok := rec["consent_id"]; ok {
			lines = append(lines, rec)
		}
	}
	if resp.StatusCode != 200 || len(lines) != 1 {
		t.Fatalf("GET %s: %d, %d records", path[1], resp.StatusCode, len(lines))
	}
	rec := lines[0]
	choices, _ := rec["choices"].(map[string]any)
	if rec["consent_id"] != id.String() || rec["action"] != "accept_all" || choices["analytics"] != true || rec["url"] != pageURL+"/" {
		t.Errorf("the recorded choice: %v", rec)
	}

	// The console, as the README says: sign in with the admin token, choose
	// the site, then its records; the choice is there.
	admin := newTab(t)
	admin.do(chromedp.Navigate(p.base + "/admin"))
	admin.waitFor(`document.querySelector('#token')`)
	admin.do(chromedp.SendKeys(chromedp.CSS("#token"), "ops-admin-token-of-28-chars"), chromedp.Submit(chromedp.CSS("#token")))
	admin.click(`document.querySelector('main a[href="/admin/sites/example-nl"]')`)
	admin.click(`[...document.querySelectorAll('main a')].find(a => a.textContent.startsWith('Every record of this period'))`)
	admin.waitFor(`location.pathname === '/admin/sites/example-nl/records' && document.body.textContent.includes(` + jsString(id.String()) + `)`)
}

// Each of the README's ten troubleshooting messages is what koekje says
// when the mistake is made: each mistake is made here, on the README's own
// configuration.
func TestTroubleshootingMessages(t *testing.T) {
	section := readmeSection(t, "Troubleshooting")
	type item struct{ title, message string }
	var items []item
	title := regexp.MustCompile(`\*\*([^*\n]+)\.\*\*`)
	rest := section
	for {
		before, after, ok := strings.Cut(rest, "\n```\n")
		if !ok {
			break
		}
		message, next, _ := strings.Cut(after, "\n```")
		if m := title.FindAllStringSubmatch(before, -1); m != nil {
			items = append(items, item{m[len(m)-1][1], message})
		}
		rest = next
	}
	if len(items) != 10 {
		t.Fatalf("the README's troubleshooting has %d mistakes with a message, want 10", len(items))
	}

	dir := t.TempDir()
	cfg := minimalConfig(t)
	// checkConfig is what check-config says of the README's configuration
	// with old replaced by new.
	checkConfig := func(old, new string) string {
		t.Helper()
		if !strings.Contains(cfg, old) {
			t.Fatalf("the README's configuration has no %q", old)
		}
		if err := os.WriteFile(filepath.Join(dir, "sites.yaml"), []byte(strings.Replace(cfg, old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		return output(t, dir, "check-config", "sites.yaml")
	}
	if err := os.WriteFile(filepath.Join(dir, "good.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var srv *proc
	server := func() *proc {
		if srv == nil {
			srv = startKoekje(t, filepath.Join(dir, "koekje.db"), "--config", filepath.Join(dir, "good.yaml"))
		}
		return srv
	}
	freeAddr := func(host string) string {
		ln, err := net.Listen("tcp", host+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}

	mistakes := map[string]func() string{
		"The banner shows, but no choice is recorded": func() string {
			req, _ := http.NewRequest("POST", server().base+"/api/v1/sites/example-nl/consents",
				strings.NewReader(`{"action":"accept_all","choices":{},"url":"https://example.nl/"}`))
			req.Header.Set("Origin", "https://example.nl")
			req.Header.Set("Content-Type", "text/plain")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ Error struct{ Message string } }
			json.NewDecoder(resp.Body).Decode(&e)
			if !poll(func() bool { return strings.Contains(srv.logs.String(), `"msg":"choice refused`) }) {
				t.Errorf("no warning in the log:\n%s", srv.logs)
			}
			// The banner writes the server's message to the console after
			// its name (TestRefusedOriginSaysSoInTheConsole).
			return "Koekje: " + e.Error.Message
		},
		"No banner at all": func() string {
			resp, err := client.Get(server().base + "/s/example.js")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%d %s", resp.StatusCode, b)
		},
		"A misspelt key": func() string { return checkConfig("    languages: [nl, en]", "    language: [nl, en]") },
		"A text in one language only": func() string {
			return checkConfig("title: {nl: Statistieken, en: Statistics}", "title: {nl: Statistieken}")
		},
		"An origin with a path":                func() string { return checkConfig("[https://www.example.nl]", "[https://www.example.nl/]") },
		"A cookie's duration in words":         func() string { return checkConfig("duration: 2y", "duration: 2 years") },
		"The config file given as an argument": func() string { return output(t, dir, "serve", "sites.yaml") },
		"A short admin token": func() string {
			return output(t, dir, "serve", "--db", "short.db", "--admin-token", "short", "--addr", freeAddr("127.0.0.1"))
		},
		"No public URL on a public address": func() string {
			return output(t, dir, "serve", "--db", "public.db", "--addr", freeAddr("0.0.0.0"), "--config", "good.yaml", "--admin-token", "ops-admin-token-of-28-chars")
		},
		"The proxy is not trusted": func() string {
			req, _ := http.NewRequest("GET", server().base+"/healthz", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			poll(func() bool { return strings.Contains(srv.logs.String(), "trusted proxy") })
			return srv.logs.String()
		},
	}
	for _, it := range items {
		mistake, ok := mistakes[it.title]
		if !ok {
			t.Errorf("the README's mistake %q is not made by this test", it.title)
			continue
		}
		if got := mistake(); !strings.Contains(got, it.message) {
			t.Errorf("%s: koekje says\n%s\nthe README shows\n%s", it.title, got, it.message)
		}
	}
}

// The schema line the README's Upgrade section quotes is the one koekje
// version prints.
func TestReadmeSchemaLine(t *testing.T) {
	t.Parallel()
	out := output(t, t.TempDir(), "version")
	line := regexp.MustCompile(`(?m)^database schema .*$`).FindString(out)
	if line == "" {
		t.Fatalf("koekje version prints no schema line:\n%s", out)
	}
	if !strings.Contains(readmeSection(t, "Upgrade"), "`"+line+"`") {
		t.Errorf("the README's Upgrade section does not quote %q", line)
	}
}
