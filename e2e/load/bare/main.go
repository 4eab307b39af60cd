// Command bare serves the demo banner's brotli bytes from a bare echo
// handler, the yardstick for /s/{site}.js in the load run.
//
//	go run ./e2e/load/bare -addr 127.0.0.1:18182
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/static"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18182", "listen address")
	flag.Parse()
	b, err := static.Build(config.Demo().Site("demo"))
	if err != nil {
		log.Fatal(err)
	}
	e := echo.New()
	e.HideBanner = true
	e.GET("/s/demo.js", func(c echo.Context) error {
		c.Response().Header().Set("Content-Encoding", "br")
		return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", b.Brotli)
	})
	log.Fatal(e.Start(*addr))
}
