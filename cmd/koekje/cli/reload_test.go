package cli

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP reloads the site configuration; a file that does not load keeps
// the one in use, and the log says why.
func TestSIGHUPReloadsTheConfiguration(t *testing.T) {
	t.Parallel()
	demo, err := os.ReadFile("../../../config/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "sites.yaml")
	site := func(id string) []byte { return []byte(strings.Replace(string(demo), "id: demo", "id: "+id, 1)) }
	if err := os.WriteFile(file, site("shop"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KOEKJE_DB": filepath.Join(dir, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken}
	base, stderr := serveUntilCleanup(t, freeAddr(t), env, "--config", file)
	status := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status("/s/shop.js"); s != 200 {
		t.Fatalf("shop's banner: %d", s)
	}
	// hup signals this process, in which the server runs, and waits for
	// the log to say what came of it.
	hup := func(logged string) {
		t.Helper()
		n := strings.Count(stderr.String(), logged)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); strings.Count(stderr.String(), logged) == n; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log after SIGHUP:\n%s", logged, stderr.String())
			}
		}
	}

	if err := os.WriteFile(file, site("blog"), 0o644); err != nil {
		t.Fatal(err)
	}
	hup("configuration reloaded")
	if s, old := status("/s/blog.js"), status("/s/shop.js"); s != 200 || old != 404 {
		t.Errorf("after reloading: blog's banner %d, shop's %d; want 200 and 404", s, old)
	}

	if err := os.WriteFile(file, []byte("sites:\n  - id: broken\n    colour: red\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hup("configuration not reloaded")
	if !strings.Contains(stderr.String(), `sites[0].colour: unknown key`) {
		t.Errorf("the log does not say why the file was refused:\n%s", stderr.String())
	}
	if s := status("/s/blog.js"); s != 200 {
		t.Errorf("after a bad file: blog's banner %d, want the configuration in use kept", s)
	}
	if s := status("/healthz"); s != 200 {
		t.Errorf("healthz after a bad file: %d", s)
	}
}
