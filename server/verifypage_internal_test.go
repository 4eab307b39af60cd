package server

import (
	"regexp"
	"slices"
	"testing"

	"github.com/koekje/koekje/config"
)

// The /verify page speaks every language the banner does, every text with
// the values its English one puts in; the browser's language is taken when
// none is asked for.
func TestVerifyWordsComplete(t *testing.T) {
	en := verifyWords["en"]
	placeholder := regexp.MustCompile(`\{\w+\}`)
	if len(verifyWords) != len(config.Languages) {
		t.Errorf("/verify texts in %d languages, the banner speaks %d", len(verifyWords), len(config.Languages))
	}
	for _, l := range config.Languages {
		w := verifyWords[l]
		for k, e := range en {
			v := w[k]
			want, got := placeholder.FindAllString(e, -1), placeholder.FindAllString(v, -1)
			slices.Sort(want)
			slices.Sort(got)
			if v == "" || !slices.Equal(want, got) {
				t.Errorf("%s: the text %q is %q, want one with %v", l, k, v, want)
			}
		}
	}
	for _, tt := range []struct{ asked, accept, want string }{
		{"de", "nl", "de"}, {"", "fr-BE,fr;q=0.9", "fr"}, {"xx", "tlh, sv;q=0.5", "sv"}, {"", "", "en"},
	} {
		if got := verifyLanguage(tt.asked, tt.accept); got != tt.want {
			t.Errorf("verifyLanguage(%q, %q) = %q, want %q", tt.asked, tt.accept, got, tt.want)
		}
	}
}
