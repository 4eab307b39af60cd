package export

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// csvExporter writes RFC 4180 CSV with a header row, one column per
// category of the site and a last row with the export's summary. Every
// cell passes through Inert, which Revert undoes exactly, so a record can be
// rehashed from its row.
type csvExporter struct {
	w    *bufio.Writer
	site *config.Site
	sep  byte
	row  []string
	tally
}

// SummaryCell opens the CSV's last row; the row's second cell is the
// summary as JSON.
const SummaryCell = "#koekje_export"

// CSVColumns returns the header of a CSV export of site: the fixed
// columns around one choice_<category> column per category of the site.
func CSVColumns(site *config.Site) []string {
	h := []string{"record_id", "consent_id", "site", "sequence", "recorded_at", "action"}
	for _, c := range site.Categories {
		h = append(h, "choice_"+c.ID)
	}
	return append(h, "other_choices", "services", "revision", "config_hash", "language", "url", "user_agent", "ip", "gpc",
		"gpc_header", "adpc", "signal", "prev_hash", "hash", "encoding", "log_index", "log_salt")
}

func (e *csvExporter) header(bom bool) error {
	if bom {
		e.w.WriteString("\ufeff")
	}
	return e.writeRow(CSVColumns(e.site))
}

func (e *csvExporter) Write(r *consent.Record) error {
	e.count(r)
	row := append(e.row[:0], r.RecordID.String(), r.ConsentID.String(), r.Site,
		strconv.FormatInt(r.Seq, 10), r.RecordedAt.Format(time.RFC3339Nano), r.Action)
	for _, c := range e.site.Categories {
		// A category the record has no choice for (added later) was never
		// put to the visitor: its cell is empty, not false.
		v, asked := r.Choices[c.ID]
		cell := ""
		if asked {
			cell = strconv.FormatBool(v)
		}
		row = append(row, cell)
	}
	row = append(row, otherChoices(r.Choices, e.site), strings.Join(r.Services, " "), strconv.Itoa(r.Revision), r.ConfigHash,
		r.Language, r.URL, r.UserAgent, r.IP, strconv.FormatBool(r.GPC))
	// A record of koekje-record-v1 has no signals: their cells are empty.
	if consent.EncodingOf(r) == consent.EncodingV2 {
		row = append(row, strconv.FormatBool(r.GPCHeader), r.ADPC, r.Signal)
	} else {
		row = append(row, "", "", "")
	}
	index := ""
	if r.LogIndex != nil {
		index = strconv.FormatInt(*r.LogIndex, 10)
	}
	row = append(row, hex.EncodeToString(r.PrevHash), hex.EncodeToString(r.Hash), consent.EncodingName(r), index, hex.EncodeToString(r.LogSalt))
	e.row = row
	return e.writeRow(row)
}

// otherChoices writes the choices of categories the site no longer has
// (a record keeps every category of its revision) as "id=true id=false",
// sorted, so that no choice is lost.
func otherChoices(choices map[string]bool, site *config.Site) string {
	var out []string
	for id, v := range choices {
		if site.Category(id) == nil {
			out = append(out, id+"="+strconv.FormatBool(v))
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// writeRow writes one row, each cell made inert and quoted where RFC 4180
// needs it; carriage returns and line feeds inside a quoted cell are kept
// as they are.
func (e *csvExporter) writeRow(cells []string) error {
	for i, c := range cells {
		if i > 0 {
			e.w.WriteByte(e.sep)
		}
		c = Inert(c)
		if !needsQuotes(c, e.sep) {
			e.w.WriteString(c)
			continue
		}
		e.w.WriteByte('"')
		e.w.WriteString(strings.ReplaceAll(c, `"`, `""`))
		e.w.WriteByte('"')
	}
	_, err := e.w.WriteString("\r\n")
	return err
}

func needsQuotes(c string, sep byte) bool {
	return c != "" && (strings.IndexByte(c, sep) >= 0 || strings.ContainsAny(c, "\"\r\n") || c[0] == ' ')
}

// Inert keeps a cell from becoming a formula when the CSV is opened in a
// spreadsheet, as OWASP advises: a cell that starts with =, +, -, @, a tab,
// a carriage return or a line feed gets an apostrophe in front. So that the
// escaping can be undone, a cell that starts with an apostrophe gets one
// more too: every cell that starts with an apostrophe carries exactly one
// that is not its own. NDJSON and ISO 27560 keep every value as recorded.
func Inert(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r\n'", s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// Revert undoes Inert. A cell that starts with an apostrophe and whose rest
// Inert would have left alone was not written by Inert: it is an error, so a
// verifier names the cell instead of rehashing a guess.
func Revert(s string) (string, bool) {
	rest, guarded := strings.CutPrefix(s, "'")
	if !guarded {
		return s, s == "" || strings.IndexByte("=+-@\t\r\n'", s[0]) < 0
	}
	return rest, rest != "" && strings.IndexByte("=+-@\t\r\n'", rest[0]) >= 0
}

// End writes the summary as the last row: SummaryCell, then the summary as
// JSON in one cell.
func (e *csvExporter) End(s *Summary) error {
	e.fill(s)
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := e.writeRow([]string{SummaryCell, string(b)}); err != nil {
		return err
	}
	return e.w.Flush()
}

func (e *csvExporter) Close() error        { return e.w.Flush() }
func (e *csvExporter) ContentType() string { return "text/csv; charset=utf-8; header=present" }
func (e *csvExporter) Extension() string   { return "csv" }
