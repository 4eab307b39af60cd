package server

import (
	"slices"
	"testing"

	"github.com/koekje/koekje/config"
)

// receiptSameAsEnglish are the receipt texts that may read as the English
// one: words the language shares with English, by key and language.
var receiptSameAsEnglish = map[string][]string{
	"site":    {"de", "nl"},
	"refused": {"es", "it"},
}

// The receipt page speaks every language the banner does, with every text
// in words of its own.
func TestReceiptWordsComplete(t *testing.T) {
	en := receiptWords["en"]
	if len(receiptWords) != len(config.Languages) {
		t.Errorf("receipt texts in %d languages, the banner speaks %d", len(receiptWords), len(config.Languages))
	}
	for _, l := range config.Languages {
		w, ok := receiptWords[l]
		if !ok {
			t.Errorf("no receipt texts for %s", l)
			continue
		}
		if len(w) != len(en) {
			t.Errorf("%s has %d receipt texts, English %d", l, len(w), len(en))
		}
		for k, e := range en {
			switch v := w[k]; {
			case v == "":
				t.Errorf("%s lacks the receipt text %q", l, k)
			case l != "en" && v == e && !slices.Contains(receiptSameAsEnglish[k], l):
				t.Errorf("%s receipt text %q is the English %q", l, k, v)
			}
		}
	}
}
