//go:build ignore

// gen writes the minified banner into min/; `go generate ./static` runs it.
package main

import (
	"log"
	"os"
	"path/filepath"

	"github.com/koekje/koekje/static/internal/minify"
)

func main() {
	out, err := minify.All(os.DirFS("."))
	if err != nil {
		log.Fatal(err)
	}
	for name, b := range out {
		if err := os.WriteFile(filepath.Join("min", name), b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
