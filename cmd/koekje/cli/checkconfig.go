package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/koekje/koekje/config"
)

// checkConfigCmd validates a configuration and prints it as a site owner
// reads it: categories, services and cookies.
func checkConfigCmd(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: koekje check-config FILE") }
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: koekje check-config FILE")
	}
	args = fs.Args()
	cfg, err := config.LoadFile(args[0])
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning: "+w.In(args[0]))
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for _, s := range cfg.Sites {
		fmt.Fprintf(w, "site %s — %s (revision %d, choices kept %d months, languages %v)\n", s.ID, s.Name, s.Revision, s.ChoiceMonths, s.Languages)
		if fp := s.FirstParty; fp != nil {
			domain := fp.CookieDomain
			if domain == "" {
				domain = fp.Hostname() + " alone"
			}
			fmt.Fprintf(w, "  first-party: the banner at %ss/%s.js, the koekje cookie on %s; koekje serve needs the proxy in --trusted-proxies\n", fp.URL, s.ID, domain)
		}
		for _, c := range s.Categories {
			req := ""
			if c.Required {
				req = ", always on"
			}
			fmt.Fprintf(w, "  %s: %s%s\n", c.ID, c.Title[s.DefaultLanguage], req)
			for _, sv := range s.Services {
				if sv.Category != c.ID {
					continue
				}
				fmt.Fprintf(w, "    %s (%s)\n", sv.ID, sv.Provider)
				for _, ck := range sv.Cookies {
					fmt.Fprintf(w, "      %-22s %-8s %s\n", ck.Name, ck.Duration, ck.Purpose[s.DefaultLanguage])
				}
			}
		}
		if sc := s.Scan; sc != nil {
			strict := ""
			if sc.Strict {
				strict = ", strict"
			}
			fmt.Fprintf(w, "  scanned by koekje serve, every %s (slots in UTC), from %s, %d pages per profile%s\n",
				sc.Every, strings.Join(sc.Pages, " "), sc.PagesPerProfile, strict)
		}
	}
	fmt.Fprintln(w, "configuration is valid")
	return nil
}
