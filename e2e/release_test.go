package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The release script builds stamped binaries for linux/amd64 and
// linux/arm64 with cgo; the amd64 one says which code it is.
func TestReleaseBuild(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("aarch64-linux-gnu-gcc"); err != nil {
		const hint = "no cross compiler for linux/arm64: install it with `apt-get install -y crossbuild-essential-arm64`"
		if os.Getenv("CI") == "true" {
			t.Fatal(hint)
		}
		t.Skip(hint)
	}
	out := t.TempDir()
	const (
		version  = "v0.0.0-release-test"
		revision = "0123456789abcdef0123456789abcdef01234567"
		built    = "2026-12-01T10:00:00Z"
	)
	// Two cross builds from a cold cache take minutes of both cores: at
	// the lowest priority they leave the browser tests running beside
	// them the CPU they need.
	cmd := exec.Command("nice", "-n", "19", "../.ci/release")
	cmd.Env = append(os.Environ(), "OUT="+out, "VERSION="+version, "REVISION="+revision, "BUILT="+built)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release: %v\n%s", err, b)
	}
	got, err := exec.Command(filepath.Join(out, "koekje-linux-amd64"), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "koekje " + version + "\nrevision " + revision + " (" + built + ")\ndatabase schema "; !strings.HasPrefix(string(got), want) || !strings.Contains(string(got), "linux/amd64") {
		t.Errorf("version of the release binary:\n%s\nwant it to start %q", got, want)
	}
	arm, err := elf.Open(filepath.Join(out, "koekje-linux-arm64"))
	if err != nil {
		t.Fatal(err)
	}
	defer arm.Close()
	if arm.Machine != elf.EM_AARCH64 {
		t.Errorf("koekje-linux-arm64 is for %v", arm.Machine)
	}
	if libs, _ := arm.ImportedLibraries(); len(libs) == 0 {
		t.Error("koekje-linux-arm64 links no C library: built without cgo, it has no SQLite")
	}
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil || !strings.Contains(string(sums), "koekje-linux-amd64\n") || !strings.Contains(string(sums), "koekje-linux-arm64\n") {
		t.Errorf("SHA256SUMS: %v %q", err, sums)
	}
}
