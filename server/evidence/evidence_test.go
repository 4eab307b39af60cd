package evidence

import (
	"strings"
	"testing"
)

// A version stored with a site's own intro saying {p} is shown as the
// banner showed it: the third parties in its place, joined in the
// version's language; one whose intro was made at build time is shown as
// stored.
func TestShowVersionFillsTheIntro(t *testing.T) {
	site := `"default_language":"nl","controller":{"organisation":"Belvast B.V."},
		"categories":[{"id":"necessary","required":true},{"id":"analytics"},{"id":"embeds"}],
		"services":[{"id":"ga","category":"analytics","provider":"Google Ireland Ltd."},
			{"id":"yt","category":"embeds","provider":"Google Ireland Ltd."},
			{"id":"vimeo","category":"embeds","provider":"Vimeo.com, Inc."},
			{"id":"chat","category":"necessary","provider":"Belvast B.V."}]`
	old := []byte(`{"site":{` + site + `,"intro":{"nl":"Wij tellen bezoeken en tonen inhoud van {p}."}},
		"texts":{"nl":{"intro":"Koekje's eigen tekst.","and":"en"}}}`)
	sh, err := ShowVersion(old, "nl")
	if err != nil {
		t.Fatal(err)
	}
	if sh.Intro != "Wij tellen bezoeken en tonen inhoud van Google en Vimeo.com." {
		t.Errorf("an older version's own intro: %q", sh.Intro)
	}
	built := []byte(`{"site":{` + site + `,"intro":{"nl":"Fijn dat u er bent. {purposes}"}},
		"texts":{"nl":{"intro":"Fijn dat u er bent. Wij vragen u toestemming voor: statistieken en video's.","and":"en"}}}`)
	if sh, err := ShowVersion(built, "nl"); err != nil || strings.Contains(sh.Intro, "{") || !strings.HasPrefix(sh.Intro, "Fijn dat u er bent. Wij vragen") {
		t.Errorf("a version whose intro was made at build time: %q, %v", sh.Intro, err)
	}
}
