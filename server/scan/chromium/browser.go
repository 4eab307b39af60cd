package chromium

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/domstorage"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/scan"
	"github.com/koekje/koekje/static"
)

// browser is one Chromium with a profile (user-data-dir) of its own.
type browser struct {
	ctx    context.Context
	cancel func()
	dir    string
	shared bool // by scans, each profile in a browser context of its own
}

// account is a user the browser runs as.
type account struct{ uid, gid uint32 }

// startBrowser starts a Chromium with a profile of its own. Run as root,
// the scanner starts it as an unprivileged user (unprivileged), with
// Chromium's sandbox where the kernel allows it; Chromium refuses its
// sandbox to root, so without such a user it runs as root without it.
func startBrowser(ctx context.Context, o *Options) (*browser, error) {
	dir, err := os.MkdirTemp("", "koekje-scan-")
	if err != nil {
		return nil, err
	}
	as := unprivileged()
	if as != nil {
		if err := os.Chown(dir, int(as.uid), int(as.gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	sandbox := os.Geteuid() != 0 || as != nil
	b, err := launch(ctx, o, dir, as, sandbox)
	if err != nil && sandbox && as != nil {
		// The kernel may not let Chromium build its sandbox (no user
		// namespaces): the user is all the isolation then.
		b, err = launch(ctx, o, dir, as, false)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return b, nil
}

func launch(ctx context.Context, o *Options, dir string, as *account, sandbox bool) (*browser, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(o.Chrome),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Frames of other sites stay in the page's process, so their
		// requests, cookies and storage writes reach the page's session.
		chromedp.Flag("disable-site-isolation-trials", true),
		chromedp.Flag("disable-features", "Translate,IsolateOrigins,site-per-process,LocalNetworkAccessChecks"),
		// Nothing of the browser's lands outside its temporary directory:
		// not its NSS database in ~/.pki, nor a download in ~/Downloads.
		chromedp.Env("HOME="+dir, "TMPDIR="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir, "XDG_DATA_HOME="+dir),
		// chromedp adds --no-sandbox for root unless told not to.
		chromedp.Flag("no-sandbox", !sandbox),
	)
	opts = append(opts, cmdOptions(as)...)
	if o.HostResolverRules != "" {
		opts = append(opts, chromedp.Flag("host-resolver-rules", o.HostResolverRules))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(ctx), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	b := &browser{ctx: bctx, dir: dir, cancel: func() { cancelBrowser(); cancelAlloc() }}
	if err := chromedp.Do(bctx); err != nil {
		b.cancel()
		return nil, err
	}
	return b, nil
}

func (b *browser) close() {
	b.cancel()
	os.RemoveAll(b.dir)
}

// hook runs in every frame before the page's own scripts: it reports who
// writes document.cookie, cookieStore and Storage, with the script from the
// top of the stack (the page itself for an inline script), and the Consent
// Mode commands in window.dataLayer that tell a late Google tag. It takes the
// binding away from the page, keeps the functions it calls from before the
// page could replace them, and sends no more than a few hundred bytes a
// write: a cookie's name and attributes without its value, a key cut short.
const hook = `(() => {
const send = globalThis.__koekjeScan
if (typeof send !== 'function') return
delete globalThis.__koekjeScan
const apply = Reflect.apply, stringify = JSON.stringify, str = String, Err = Error
const { slice, indexOf, split, includes } = String.prototype, exec = RegExp.prototype.exec
const cut = s => { s = str(s); return s.length > 1024 ? apply(slice, s, [0, 1024]) : s }
// The first frame outside this hook is the writer's; one without a URL is
// an inline script the banner (or another script) inserted.
const source = () => {
  const lines = apply(split, str(new Err().stack || ''), ['\n'])
  for (let i = 1; i < lines.length && i < 20; i++) {
    if (apply(includes, lines[i], ['koekje-scan-hook'])) continue
    const m = apply(exec, /(https?:\/\/\S+?):\d+:\d+\)?$/, [lines[i]])
    return cut(m ? m[1] : location.href)
  }
  return ''
}
const report = o => { try { o.origin = cut(location.origin); o.page = cut(location.href); o.source = source(); send(stringify(o)) } catch (e) {} }
const d = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie')
// A cookie's name and attributes: its value is not the scanner's business.
const nameAndAttributes = v => {
  v = str(v)
  const semi = apply(indexOf, v, [';']), eq = apply(indexOf, v, ['='])
  const name = apply(slice, v, [0, eq < 0 || (semi >= 0 && semi < eq) ? 0 : eq])
  return cut(name + '=' + (semi < 0 ? '' : apply(slice, v, [semi])))
}
Object.defineProperty(Document.prototype, 'cookie', { configurable: true, enumerable: d.enumerable,
  get() { return apply(d.get, this, []) },
  set(v) { report({ kind: 'cookie', value: nameAndAttributes(v) }); apply(d.set, this, [v]) } })
if (globalThis.CookieStore) {
  const set = CookieStore.prototype.set
  CookieStore.prototype.set = function (a, b) {
    report({ kind: 'cookie', value: cut((typeof a === 'string' ? a : a && a.name)) + '=' })
    return apply(set, this, arguments)
  }
}
const setItem = Storage.prototype.setItem
Storage.prototype.setItem = function (k) {
  let area = 'sessionStorage'
  try { if (this === localStorage) area = 'localStorage' } catch (e) {}
  report({ kind: 'storage', area, key: cut(k) })
  return apply(setItem, this, arguments)
}
// Google Consent Mode: the document's first ("consent", "default") in
// window.dataLayer, and any ("config" | "event") before it, whether pushed
// before a Google tag loads or after it took the array over.
let defaulted = false, late = 0
const isArray = Array.isArray, defineProperty = Object.defineProperty
const look = item => {
  if (item === null || typeof item !== 'object') return
  const cmd = item[0]
  if (cmd === 'consent' && item[1] === 'default') {
    if (!defaulted) { defaulted = true; report({ kind: 'consent-default' }) }
  } else if ((cmd === 'config' || cmd === 'event') && !defaulted && late < 20) {
    late++
    report({ kind: 'late', value: cut('gtag ' + cmd + ' ' + str(item[1])) })
  }
}
const watched = new WeakSet(), has = WeakSet.prototype.has, add = WeakSet.prototype.add
const watch = a => {
  if (!isArray(a) || apply(has, watched, [a])) return
  apply(add, watched, [a])
  for (let i = 0; i < a.length; i++) look(a[i])
  let push = a.push
  const wrapped = function () {
    for (let i = 0; i < arguments.length; i++) try { look(arguments[i]) } catch (e) {}
    return apply(push, this, arguments)
  }
  defineProperty(a, 'push', { configurable: true, enumerable: false, get() { return wrapped }, set(f) { push = f } })
}
let layer = globalThis.dataLayer
defineProperty(globalThis, 'dataLayer', { configurable: true, enumerable: true,
  get() { return layer },
  set(v) { layer = v; try { watch(v) } catch (e) {} } })
})()
//# sourceURL=koekje-scan-hook`

// hookReport is what the hook sends.
type hookReport struct {
	Kind   string `json:"kind"`
	Value  string `json:"value"`
	Area   string `json:"area"`
	Key    string `json:"key"`
	Origin string `json:"origin"`
	Page   string `json:"page"`
	Source string `json:"source"`
}

// gpcJS makes navigator.globalPrivacyControl true in every frame of a
// GPC profile's tabs, as a browser sending GPC has it.
const gpcJS = `Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { configurable: true, enumerable: true, get() { return true } })`

// setter is who last set a cookie, and the lifetime it asked for in
// seconds (0: a session cookie, -1: not known).
type setter struct {
	by, source string
	asked      int64
}

func (st setter) attribute(c *scan.Cookie) {
	c.SetBy, c.Source = st.by, st.source
	if st.asked >= 0 {
		c.Asked = &st.asked
	}
}

// session is one tab's record of what happened, fed by the tab's events in
// the order Chromium sent them.
type session struct {
	o       *Options
	profile string
	texts   map[string]choiceTexts
	lookJS  string
	scan    context.Context // ends at the scan's deadline
	holder  context.Context // the profile's browser context, where tabs open
	// tab is the tab pages open in; closeTab closes it.
	tab      context.Context
	closeTab func()

	// What the session keeps is bounded (see limits.go): what does not
	// fit is counted in cut, and said in the report.
	mu       sync.Mutex
	page     string // the page being visited
	loaded   bool
	last     time.Time // the last network activity
	inflight map[network.RequestID]string
	urls     *recent // request → URL, for the cookies its response sets
	// early are the cookies a response set before its request was seen:
	// Chromium may send a response's extra info before the request.
	early    map[network.RequestID][]string
	setters  map[string]setter // cookie name → who set it last
	storage  map[string]scan.StorageKey
	requests []scan.Request  // the first request to each other host
	hosts    map[string]int  // host → its request
	koekje   map[string]bool // origins that serve the site's banner
	// unattributed are the cookies (indexes into Profile.Cookies) seen
	// before the event that names their setter: a response's extra info can
	// come after the response has finished.
	unattributed []int
	posts        int
	dialogs      []string             // the dialogs of the page being visited
	downloads    []string             // the downloads the page being visited started
	frames       map[cdp.FrameID]bool // the tab's frames, whose downloads are the page's
	// origins are the origins of the frames of the page being visited,
	// whose storage is read from outside the page.
	origins map[cdp.FrameID]string
	// mainFrame is the tab's top frame; docLoader the loader of the
	// document in it, topContext its scripts' execution context, and
	// defaulted whether that document set Consent Mode's defaults yet.
	// tags are the pages' late Google tags.
	mainFrame   cdp.FrameID
	topContext  runtime.ExecutionContextID
	docLoader   cdp.LoaderID
	defaulted   bool
	tags        []scan.Tag
	tagPages    map[string]int  // page → its tag
	cutMessages []string        // the browser's messages cut on the page being visited
	cut         map[string]int  // what did not fit: kind → how many
	cutIDs      map[string]bool // what was counted in cut, up to maxInternal
}

func newSession(o *Options, texts map[string]choiceTexts, profile string, scanCtx, holder context.Context) *session {
	return &session{o: o, profile: profile, texts: texts, lookJS: lookJS(o.Site, texts), scan: scanCtx, holder: holder, tagPages: map[string]int{},
		inflight: map[network.RequestID]string{}, urls: newRecent(maxInternal), early: map[network.RequestID][]string{},
		setters: map[string]setter{}, storage: map[string]scan.StorageKey{}, hosts: map[string]int{}, koekje: map[string]bool{},
		cut: map[string]int{}, cutIDs: map[string]bool{}, frames: map[cdp.FrameID]bool{}, origins: map[cdp.FrameID]string{}}
}

func (s *session) listen(ev any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		s.last = time.Now()
		u := clip(ev.Request.URL, maxName)
		if len(s.inflight) < maxInternal {
			s.inflight[ev.RequestID] = u
		}
		s.urls.put(ev.RequestID, u)
		for _, name := range s.early[ev.RequestID] {
			if st := s.setters[name]; st.by == "header" && st.source == "" {
				st.source = u
				s.setters[name] = st
			}
		}
		delete(s.early, ev.RequestID)
		s.request(ev)
	case *network.EventLoadingFinished:
		s.last = time.Now()
		delete(s.inflight, ev.RequestID)
	case *network.EventLoadingFailed:
		s.last = time.Now()
		delete(s.inflight, ev.RequestID)
	case *network.EventResponseReceivedExtraInfo:
		blocked := map[string]bool{}
		for _, b := range ev.BlockedCookies {
			if b.Cookie != nil {
				blocked[b.Cookie.Name] = true
			}
		}
		for k, v := range ev.Headers {
			if !strings.EqualFold(k, "set-cookie") {
				continue
			}
			str, _ := v.(string)
			for line := range strings.SplitSeq(str, "\n") {
				if name := cookieName(line); name != "" && !blocked[name] {
					u, ok := s.urls.get(ev.RequestID)
					if !ok && len(s.early) < maxInternal {
						s.early[ev.RequestID] = append(s.early[ev.RequestID], name)
					}
					s.setCookie(name, setter{"header", u, askedLifetime(line, time.Now())})
				}
			}
		}
	case *page.EventLoadEventFired:
		s.loaded = true
		s.last = time.Now()
	case *page.EventFrameAttached:
		if len(s.frames) < maxInternal {
			s.frames[ev.FrameID] = true
		}
	case *runtime.EventExecutionContextCreated:
		var aux struct {
			FrameID   cdp.FrameID `json:"frameId"`
			IsDefault bool        `json:"isDefault"`
		}
		if ev.Context != nil && json.Unmarshal([]byte(ev.Context.AuxData), &aux) == nil && aux.IsDefault && aux.FrameID == s.mainFrame {
			s.topContext = ev.Context.ID
		}
	case *page.EventFrameNavigated:
		if ev.Frame.ID == s.mainFrame {
			s.docLoader, s.defaulted = ev.Frame.LoaderID, false
		}
		delete(s.origins, ev.Frame.ID)
		if u, err := url.Parse(ev.Frame.SecurityOrigin); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && len(s.origins) < maxOrigins {
			s.origins[ev.Frame.ID] = clip(ev.Frame.SecurityOrigin, maxName)
		}
	case *page.EventFrameDetached:
		delete(s.origins, ev.FrameID)
	case *cdpbrowser.EventDownloadWillBegin:
		// The browser tells every tab of every download: this tab's are
		// those of its frames.
		if s.frames[ev.FrameID] && len(s.downloads) < maxDialogs {
			s.downloads = append(s.downloads, clip(ev.URL, maxName)+" (refused)")
		}
	case *runtime.EventBindingCalled:
		if ev.Name != "__koekjeScan" {
			return
		}
		var r hookReport
		if json.Unmarshal([]byte(ev.Payload), &r) != nil {
			return
		}
		switch r.Kind {
		case "cookie":
			if name := cookieName(r.Value); name != "" && !deletes(r.Value) {
				s.setCookie(name, setter{"script", clip(r.Source, maxName), askedLifetime(r.Value, time.Now())})
			}
		case "storage":
			s.storageKey(scan.StorageKey{Area: r.Area, Origin: r.Origin, Key: r.Key, Source: r.Source, Page: s.page})
		// Consent Mode counts in the page's own top frame: a frame's tags
		// are its site's, and a frame the hook did not reach could call
		// the binding with whatever it likes.
		case "consent-default":
			if ev.ExecutionContextID == s.topContext {
				s.defaulted = true
			}
		case "late":
			if ev.ExecutionContextID == s.topContext {
				s.lateTag(scan.Tag{What: r.Value, Source: r.Source})
			}
		}
	}
}

// noteCut notes a message of the browser that was too large to read.
func (s *session) noteCut(c cutParams) {
	s.note(fmt.Sprintf("the browser's %s of %d bytes was too large to read", c.Method, c.Size))
}

// note notes what the scanner could not read of the page being visited.
func (s *session) note(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cutMessages) < maxDialogs {
		s.cutMessages = append(s.cutMessages, msg)
	}
}

// dropped counts a thing of a kind that did not fit, once; past
// maxInternal of them, the count is a lower bound. The caller holds mu.
func (s *session) dropped(kind, id string) {
	id = kind + "\x00" + id
	if s.cutIDs[id] || len(s.cutIDs) >= maxInternal {
		return
	}
	s.cutIDs[id] = true
	s.cut[kind]++
}

// setCookie notes who set a cookie, if there is room. The caller holds mu.
func (s *session) setCookie(name string, st setter) {
	name = clip(name, maxName)
	if _, ok := s.setters[name]; ok || len(s.setters) < maxInternal {
		s.setters[name] = st
	}
}

// storageKey records a storage key the first time it is seen, if there is
// room. The caller holds mu.
func (s *session) storageKey(k scan.StorageKey) {
	k.Area, k.Origin, k.Key, k.Source, k.Page = clip(k.Area, maxName), clip(k.Origin, maxName), clip(k.Key, maxName), clip(k.Source, maxName), clip(k.Page, maxName)
	id := k.Area + " " + k.Origin + " " + k.Key
	if _, ok := s.storage[id]; ok {
		return
	}
	if len(s.storage) >= maxEntries {
		s.dropped(cutStorage, id)
		return
	}
	s.storage[id] = k
}

// lateTag records a Google tag that ran before the page set Consent Mode's
// defaults: the first on each page, and how many. The caller holds mu.
func (s *session) lateTag(t scan.Tag) {
	if s.page == "" {
		return
	}
	if i, ok := s.tagPages[s.page]; ok {
		s.tags[i].Count++
		return
	}
	if len(s.tags) >= maxEntries {
		s.dropped(cutTags, s.page)
		return
	}
	s.tagPages[s.page] = len(s.tags)
	s.tags = append(s.tags, scan.Tag{Page: clip(s.page, maxName), What: clip(t.What, maxName), Source: clip(t.Source, maxName), Count: 1})
}

// googleCollect reports whether a request is a Google tag's collection
// request: a hit of Google Analytics (on Google's hosts, or a first-party
// server-side tag's /g/collect) or of a Google Ads conversion tag.
func googleCollect(u *url.URL) bool {
	h, p := strings.ToLower(u.Hostname()), u.Path
	google := func(domains ...string) bool {
		for _, d := range domains {
			if h == d || strings.HasSuffix(h, "."+d) {
				return true
			}
		}
		return false
	}
	switch {
	case strings.HasSuffix(p, "/collect") && google("google-analytics.com", "analytics.google.com", "doubleclick.net", "googletagmanager.com"):
		return true
	case p == "/g/collect" && u.Query().Get("tid") != "":
		return true
	case strings.HasPrefix(p, "/pagead/") && google("doubleclick.net", "googleadservices.com", "google.com") &&
		(strings.Contains(p, "conversion") || strings.Contains(p, "/1p-user-list/")):
		return true
	case p == "/ccm/collect" && google("google.com"):
		return true
	}
	return false
}

// request records a request to another site than the page's, other than
// to the consent server that serves the banner, and a Google tag's
// collection request that the page's document made before it set Consent
// Mode's defaults (the DevTools protocol sees it, whatever the page's own
// scripts do). The caller holds mu.
func (s *session) request(ev *network.EventRequestWillBeSent) {
	u, err := url.Parse(ev.Request.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return
	}
	// A request of the document before (a beacon as it unloads) has its
	// loader, not the page's.
	if !s.defaulted && ev.FrameID == s.mainFrame && ev.LoaderID == s.docLoader && googleCollect(u) {
		s.lateTag(scan.Tag{What: ev.Request.URL, Source: initiator(ev)})
	}
	if u.Path == "/s/"+s.o.Site.ID+".js" && len(s.koekje) < maxInternal {
		s.koekje[u.Scheme+"://"+u.Host] = true
	}
	if s.koekje[u.Scheme+"://"+u.Host] && (strings.HasPrefix(u.Path, "/s/") || strings.HasPrefix(u.Path, "/api/v1/")) {
		return
	}
	if s.page == "" || scan.SameSite(u.Hostname(), scan.Host(s.page)) {
		return
	}
	host := u.Hostname()
	if i, ok := s.hosts[host]; ok {
		s.requests[i].Count++
		return
	}
	if len(s.requests) >= maxEntries {
		s.dropped(cutRequests, host)
		return
	}
	s.hosts[host] = len(s.requests)
	s.requests = append(s.requests, scan.Request{URL: clip(ev.Request.URL, maxName), Type: clip(string(ev.Type), maxName),
		Initiator: clip(initiator(ev), maxName), Page: clip(s.page, maxName), Count: 1})
}

// initiator is the script or document that made a request, when the
// browser says.
func initiator(ev *network.EventRequestWillBeSent) string {
	in := ev.Initiator
	if in == nil {
		return ""
	}
	init := in.URL
	if in.Stack != nil && len(in.Stack.CallFrames) > 0 {
		init = in.Stack.CallFrames[0].URL
	}
	if init == "" && in.Type == network.InitiatorTypeParser {
		init = ev.DocumentURL
	}
	return init
}

// cookieName is the name in "name=value; attributes".
func cookieName(line string) string {
	nv, _, _ := strings.Cut(line, ";")
	name, _, ok := strings.Cut(nv, "=")
	if !ok {
		return ""
	}
	return strings.TrimSpace(name)
}

// deletes reports whether a document.cookie write removes its cookie.
func deletes(line string) bool {
	l := strings.ToLower(strings.ReplaceAll(line, " ", ""))
	return strings.Contains(l, "max-age=0") || strings.Contains(l, "max-age=-") || strings.Contains(l, "expires=thu,01jan1970")
}

// askedLifetime is the lifetime a Set-Cookie line or a document.cookie
// write asks for, in seconds: Max-Age, else Expires; 0 for a session
// cookie, -1 when Expires cannot be read.
func askedLifetime(line string, now time.Time) int64 {
	var expires string
	for i, attr := range strings.Split(line, ";") {
		if i == 0 {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(attr), "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "max-age":
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return max(n, 0)
			}
		case "expires":
			expires = strings.TrimSpace(v)
		}
	}
	if expires == "" {
		return 0
	}
	t, err := http.ParseTime(expires)
	if err != nil {
		return -1
	}
	return max(int64(t.Sub(now).Round(time.Second).Seconds()), 0)
}

// intercept answers the banner's POSTs to the consent API as the server
// would (201 and a plausible record), so nothing is recorded and the
// banner does not retry. Everything else the pattern catches goes on.
func (s *session) intercept(ctx context.Context) {
	for ev, err := range chromedp.Events(ctx, fetch.RequestPaused) {
		if err != nil {
			return
		}
		if ev.Request.Method != "POST" {
			chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			continue
		}
		s.mu.Lock()
		s.posts++
		s.mu.Unlock()
		origin := "*"
		for k, v := range ev.Request.Headers {
			if str, ok := v.(string); ok && strings.EqualFold(k, "origin") && str != "null" {
				origin = str
			}
		}
		id, rid := uuid.New(), uuid.Must(uuid.NewV7())
		tok := make([]byte, 24)
		rand.Read(tok)
		u, _ := url.Parse(ev.Request.URL)
		body, _ := json.Marshal(map[string]string{
			"consent_id":  id.String(),
			"record_id":   rid.String(),
			"recorded_at": time.Now().UTC().Format(time.RFC3339Nano),
			"token":       "scan-" + hex.EncodeToString(tok),
			"receipt_url": u.Scheme + "://" + u.Host + "/api/v1/consents/" + id.String() + "/receipt",
		})
		chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
			RequestID: ev.RequestID, ResponseCode: 201, Body: body,
			ResponseHeaders: []*fetch.HeaderEntry{
				{Name: "Content-Type", Value: "application/json"},
				{Name: "Access-Control-Allow-Origin", Value: origin},
				{Name: "Vary", Value: "Origin"},
			},
		})
	}
}

// profile runs one profile in a browser context of its own: it visits the
// pages and the same-origin links it finds, up to Options.Pages. Rejected
// and Accepted first open the first page and click their button in the
// banner, and record from then on. A page that cannot be scanned is a
// Visit with its error; only the end of ctx itself (not of the scan's
// deadline) is an error.
func (b *browser) profile(ctx, scanCtx context.Context, o *Options, texts map[string]choiceTexts, name string, pages []string) (*scan.Profile, error) {
	p, err := b.run(ctx, scanCtx, o, texts, name, pages)
	if err != nil {
		return nil, fmt.Errorf("%s profile: %w", name, err)
	}
	return p, nil
}

func (b *browser) run(ctx, scanCtx context.Context, o *Options, texts map[string]choiceTexts, name string, pages []string) (*scan.Profile, error) {
	s := newSession(o, texts, name, scanCtx, b.ctx)
	if b.shared {
		// The profile's browser context outlives its tabs: a tab whose
		// page hung is replaced by another with the same cookies. It is
		// made without a tab of its own: each tab is a renderer process to
		// start.
		id, err := newBrowserContext(scanCtx, b.ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("open a browser context: %w", err)
		}
		defer disposeBrowserContext(b.ctx, id)
		hctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithExistingBrowserContext(id))
		defer cancel()
		s.holder = hctx
	}
	defer s.close()
	if err := refuseDownloads(ctx, s.holder); err != nil {
		return nil, fmt.Errorf("refuse downloads: %w", err)
	}

	p := &scan.Profile{Name: name}
	seen := map[string]bool{} // cookies already recorded: name, domain, path
	// fail records a page that could not be scanned, and opens a fresh
	// tab when the page's deadline passed: its renderer may be hung.
	fail := func(v scan.Visit, err error, timedOut bool) error {
		if ctx.Err() != nil {
			return fmt.Errorf("at %s (%d pages done): %w", v.Page, len(p.Pages), ctx.Err())
		}
		v.Status, v.Error = scan.StatusError, s.why(err, timedOut)
		s.visited(p, v)
		if timedOut && scanCtx.Err() == nil {
			if err := s.openTab(); err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return nil
	}
	if err := s.openTab(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// No tab, no page: every page is one the profile could not scan.
		for _, u := range pages[:min(len(pages), o.Pages)] {
			s.visited(p, scan.Visit{Page: u, Status: scan.StatusError, Error: s.why(fmt.Errorf("open a tab: %w", err), false)})
		}
		return p, nil
	}

	if name != scan.Before && name != scan.GPC {
		// The first page before the choice is not part of this profile's
		// record: the Before profile covers it.
		v := scan.Visit{Page: pages[0], Choice: true}
		start := time.Now()
		st, timedOut, err := s.choose(p, seen, name, pages[0])
		v.Seconds = since(start)
		v.Dialogs, v.Downloads, v.Cut = s.takeNotes()
		if err != nil {
			// No page or no banner to click: this profile has nothing to
			// record.
			return p, fail(v, err, timedOut)
		}
		v.Status, v.HTTPStatus = scan.StatusScanned, st.status
		s.visited(p, v)
	}
	queue := slices.Clone(pages)
	queued := map[string]bool{}
	for _, q := range queue {
		queued[q] = true
	}
	visited := 0
	for len(queue) > 0 && visited < o.Pages {
		u := queue[0]
		queue = queue[1:]
		visited++
		v := scan.Visit{Page: u}
		if scanCtx.Err() != nil {
			if err := fail(v, scanCtx.Err(), true); err != nil {
				return nil, err
			}
			continue
		}
		start := time.Now()
		st, timedOut, err := s.look(p, seen, u)
		v.Seconds = since(start)
		v.Dialogs, v.Downloads, v.Cut = s.takeNotes()
		if err != nil {
			if err := fail(v, err, timedOut); err != nil {
				return nil, err
			}
			continue
		}
		v.Status, v.HTTPStatus = scan.StatusScanned, st.status
		s.visited(p, v)
		p.Pages = append(p.Pages, u)
		if name == scan.Before || name == scan.GPC {
			p.Banners = append(p.Banners, scan.Banner{Page: u, Shown: st.Shown, Lang: st.Lang, Accept: st.Accept, Reject: st.Reject})
		}
		if visited+len(queue) < o.Pages {
			for _, l := range sameOrigin(u, st.Links) {
				if !queued[l] {
					queued[l] = true
					queue = append(queue, l)
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range s.unattributed {
		if st, ok := s.setters[p.Cookies[i].Name]; ok {
			st.attribute(&p.Cookies[i])
		}
	}
	p.Requests, p.Tags = s.requests, s.tags
	for _, k := range s.storage {
		p.Storage = append(p.Storage, k)
	}
	slices.SortFunc(p.Storage, func(a, b scan.StorageKey) int {
		return strings.Compare(a.Area+a.Origin+a.Key, b.Area+b.Origin+b.Key)
	})
	p.ConsentPOSTs = s.posts
	for _, kind := range []string{cutCookies, cutStorage, cutRequests, cutTags} {
		if n := s.cut[kind]; n > 0 {
			more := fmt.Sprintf("%d more", n)
			if len(s.cutIDs) >= maxInternal {
				more = fmt.Sprintf("at least %d more", n)
			}
			p.Cut = append(p.Cut, fmt.Sprintf("%s: %d kept, %s not", kind, maxEntries, more))
		}
	}
	return p, nil
}

func since(t time.Time) float64 { return math.Round(time.Since(t).Seconds()*1000) / 1000 }

// why words the error of a page that could not be scanned.
func (s *session) why(err error, timedOut bool) string {
	switch {
	case s.scan.Err() != nil:
		return fmt.Sprintf("the scan's deadline (%s) passed", s.o.Timeout)
	case timedOut:
		return fmt.Sprintf("the page timeout (%s) passed: %v", s.o.PageTimeout, err)
	}
	return err.Error()
}

// newBrowserContext makes a browser context in the browser of bctx.
func newBrowserContext(ctx, bctx context.Context) (cdp.BrowserContextID, error) {
	cctx, cancel := context.WithTimeout(bctx, tabTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	res, err := chromedp.CallBrowser(cctx, target.CreateBrowserContext, target.CreateBrowserContextParams{})
	if err != nil {
		return "", err
	}
	return res.BrowserContextID, nil
}

// disposeBrowserContext disposes of a browser context and its tabs.
func disposeBrowserContext(bctx context.Context, id cdp.BrowserContextID) {
	ctx, cancel := context.WithTimeout(bctx, tabTimeout)
	defer cancel()
	chromedp.CallBrowser(ctx, target.DisposeBrowserContext, target.DisposeBrowserContextParams{BrowserContextID: id})
}

// refuseDownloads makes the browser refuse the downloads of the pages in
// holder's browser context, and tell of them.
func refuseDownloads(ctx, holder context.Context) error {
	cctx, cancel := context.WithTimeout(holder, tabTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	events := true
	_, err := chromedp.CallBrowser(cctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorDeny, BrowserContextID: chromedp.FromContext(holder).BrowserContextID, EventsEnabled: &events})
	return err
}

// messageCut is the stand-in of the browser's events too large to read.
var messageCut = cdp.Event[cutParams]{Method: cutEvent}

// tabTimeout bounds the opening of a tab: the browser's work, not the
// page's, so not the page timeout.
const tabTimeout = 30 * time.Second

// openTab opens a fresh tab in the profile's browser context, with the
// scanner's listeners, hook and interception, and closes the tab before:
// a tab whose page hung its renderer is not used again.
func (s *session) openTab() error {
	s.close()
	// chromedp runs a tab on the context that opens it, so the tab's own
	// context opens it, cancelled if that takes too long.
	tctx, cancel := chromedp.NewContext(s.holder)
	s.tab, s.closeTab = tctx, cancel
	timer := time.AfterFunc(tabTimeout, cancel)
	defer timer.Stop()
	stop := context.AfterFunc(s.scan, cancel)
	defer stop()
	if err := chromedp.Do(tctx); err != nil {
		return err
	}
	if err := chromedp.Listen(tctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			s.dismiss(tctx, d)
		}
		s.listen(ev)
	}); err != nil {
		return err
	}
	s.mu.Lock()
	clear(s.frames)
	s.mainFrame = cdp.FrameID(chromedp.FromContext(tctx).Target.TargetID)
	s.frames[s.mainFrame] = true
	s.mu.Unlock()
	if err := chromedp.ListenBrowser(tctx, func(ev any) {
		if d, ok := ev.(*cdpbrowser.EventDownloadWillBegin); ok {
			s.listen(d)
		}
	}); err != nil {
		return err
	}
	go s.intercept(tctx)
	go func() {
		for ev, err := range chromedp.Events(tctx, messageCut) {
			if err != nil {
				return
			}
			s.noteCut(ev)
			if ev.Method == "Page.javascriptDialogOpening" {
				// A dialog too large to read is dismissed all the same.
				s.answerDialog(tctx, false)
			}
		}
	}()
	setup := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		// The scanner reads no request's body: a page's uploads stay out of
		// its events.
		noBody := int64(1)
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{MaxPostDataSize: &noBody}); err != nil {
			return err
		}
		if s.profile == scan.GPC {
			// Every request of the tab, the page's own and its frames' and
			// subresources', carries the header; every frame the property.
			if _, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Sec-GPC": "1"}}); err != nil {
				return err
			}
			if _, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: gpcJS}); err != nil {
				return err
			}
		}
		if _, err := cdp.Call(ctx, t, runtime.AddBinding, runtime.AddBindingParams{Name: "__koekjeScan"}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: hook}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
			{URLPattern: "*/api/v1/consents"}, {URLPattern: "*/api/v1/sites/*/consents"},
		}})
		return err
	})
	return chromedp.Do(tctx, setup)
}

// close stops the tab's scripts and closes it: a script in an endless loop
// holds the renderer, which then outlives its closed tab, spinning.
func (s *session) close() {
	if s.closeTab == nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.tab, time.Second)
	chromedp.Call(ctx, runtime.TerminateExecution, cdp.Empty{})
	cancel()
	s.closeTab()
	s.closeTab = nil
}

// step is a context for one step on the tab: it ends after d, or with the
// scan.
func (s *session) step(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(s.tab, d)
	stop := context.AfterFunc(s.scan, cancel)
	return ctx, func() { stop(); cancel() }
}

// dismiss closes a JavaScript dialog the page opened, as a visitor who
// wants to read on would: alert, confirm and prompt are dismissed, a
// "leave this page?" is answered yes. The dialog is noted in the visit.
func (s *session) dismiss(tab context.Context, d *page.EventJavascriptDialogOpening) {
	s.mu.Lock()
	if len(s.dialogs) < maxDialogs {
		s.dialogs = append(s.dialogs, fmt.Sprintf("%s %s", d.Type, clip(strconv.Quote(d.Message), maxName)))
	}
	s.mu.Unlock()
	// The listener must not wait for the browser's answer.
	go s.answerDialog(tab, d.Type == page.DialogTypeBeforeunload)
}

// answerDialog closes the tab's open dialog.
func (s *session) answerDialog(tab context.Context, accept bool) {
	ctx, cancel := context.WithTimeout(tab, 5*time.Second)
	defer cancel()
	chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
}

// takeNotes returns the dialogs, the downloads and the browser's messages
// cut noted since the last call.
func (s *session) takeNotes() (dialogs, downloads, cut []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dialogs, downloads, cut = s.dialogs, s.downloads, s.cutMessages
	s.dialogs, s.downloads, s.cutMessages = nil, nil, nil
	return dialogs, downloads, cut
}

// look visits a page and records what it did, within the page timeout. It
// reports whether that timeout, or the scan's, ended it.
func (s *session) look(p *scan.Profile, seen map[string]bool, u string) (*pageState, bool, error) {
	ctx, cancel := s.step(s.o.PageTimeout)
	defer cancel()
	status, err := s.visit(ctx, u)
	if err != nil {
		return nil, ctx.Err() != nil, err
	}
	st, err := s.snapshot(ctx, p, seen, u)
	if err != nil {
		return nil, ctx.Err() != nil, err
	}
	st.status = status
	return st, false, nil
}

// visit opens a page and waits until it has settled: loaded, and the
// network idle for Options.Quiet. It returns the page's HTTP status.
func (s *session) visit(ctx context.Context, u string) (int, error) {
	s.mu.Lock()
	// Requests of the page before that never finished do not hold this one.
	s.page, s.loaded, s.inflight = u, false, map[network.RequestID]string{}
	clear(s.origins)
	s.mu.Unlock()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		return 0, err
	}
	status := 0
	if resp != nil {
		status = int(resp.Status)
	} else {
		// Under load the navigation can end before its response is
		// matched to it; the page's own navigation timing has the status.
		st, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(performance.getEntriesByType('navigation')[0] || {}).responseStatus || 0`))
		if err != nil {
			return 0, err
		}
		status = int(st)
	}
	if status >= 400 {
		return status, fmt.Errorf("HTTP %d", status)
	}
	// The navigation ends with the page's load event or its frame's
	// stopped loading; under load this session has been seen to miss the
	// former, so the navigation's end counts as the load.
	s.mu.Lock()
	s.loaded = true
	s.mu.Unlock()
	return status, s.settle(ctx)
}

// settle waits until the page has loaded and no request has been in flight
// for Options.Quiet.
func (s *session) settle(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		idle := s.loaded && len(s.inflight) == 0 && time.Since(s.last) >= s.o.Quiet
		s.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, u := range s.inflight {
				return fmt.Errorf("the page did not settle: %d requests still open (%s)", len(s.inflight), clip(u, maxName))
			}
			if s.loaded {
				return errors.New("the page did not settle: the network was never idle")
			}
			return errors.New("the page did not finish loading")
		case <-tick.C:
		}
	}
}

// snapshot records the cookies the browser holds that were not recorded
// before, and the page's own storage keys, and returns what the page shows.
func (s *session) snapshot(ctx context.Context, p *scan.Profile, seen map[string]bool, pageURL string) (*pageState, error) {
	// A browser context's cookies are the browser's to give, by its ID;
	// the page's own call gives the default context's.
	call := chromedp.Call[storage.GetCookiesParams, storage.GetCookiesResult]
	params := storage.GetCookiesParams{}
	if id := chromedp.FromContext(ctx).BrowserContextID; id != "" {
		call, params.BrowserContextID = chromedp.CallBrowser[storage.GetCookiesParams, storage.GetCookiesResult], id
	}
	res, err := call(ctx, storage.GetCookies, params)
	if err != nil {
		return nil, fmt.Errorf("read cookies: %w", err)
	}
	s.recordCookies(p, seen, pageURL, res.Cookies)

	if err := s.readStorage(ctx, pageURL); err != nil {
		return nil, err
	}
	st, err := chromedp.Run(ctx, chromedp.Evaluate[*pageState](s.lookJS))
	if err != nil {
		return nil, fmt.Errorf("read the page: %w", err)
	}
	return st, nil
}

// readStorage records the keys of the localStorage and sessionStorage of
// the origins of the page's frames, as the browser holds them: a page can
// keep its own scripts from seeing its keys, not the DevTools protocol.
func (s *session) readStorage(ctx context.Context, pageURL string) error {
	s.mu.Lock()
	origins := slices.Sorted(maps.Values(s.origins))
	main := s.origins[cdp.FrameID(chromedp.FromContext(ctx).Target.TargetID)]
	s.mu.Unlock()
	for _, o := range slices.Compact(origins) {
		for _, area := range []string{"localStorage", "sessionStorage"} {
			res, err := chromedp.Call(ctx, domstorage.GetDOMStorageItems, domstorage.GetDOMStorageItemsParams{
				StorageID: &domstorage.StorageID{SecurityOrigin: o, IsLocalStorage: area == "localStorage"}})
			if err != nil && o == main {
				return fmt.Errorf("read the %s of %s: %w", area, o, err)
			}
			if err != nil {
				// A frame that went while the scanner read it.
				s.note(fmt.Sprintf("the %s of %s could not be read: %v", area, o, err))
				continue
			}
			s.mu.Lock()
			for _, item := range res.Entries {
				if len(item) > 0 {
					s.storageKey(scan.StorageKey{Area: area, Origin: o, Key: item[0], Page: pageURL})
				}
			}
			s.mu.Unlock()
		}
	}
	return nil
}

// recordCookies records the cookies the browser holds that were not
// recorded before, up to maxEntries.
func (s *session) recordCookies(p *scan.Profile, seen map[string]bool, pageURL string, cs []*network.Cookie) {
	now := time.Now()
	host := scan.Host(pageURL)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		id := c.Name + "\x00" + c.Domain + "\x00" + c.Path
		if seen[id] {
			continue
		}
		if len(p.Cookies) >= maxEntries {
			s.dropped(cutCookies, id)
			continue
		}
		seen[id] = true
		ck := scan.Cookie{Name: clip(c.Name, maxName), Domain: clip(c.Domain, maxName), Path: clip(c.Path, maxName), Page: clip(pageURL, maxName),
			ThirdParty: !scan.SameSite(strings.TrimPrefix(c.Domain, "."), host)}
		if !c.Session && c.Expires > 0 {
			t := time.Unix(0, int64(c.Expires*1e9)).UTC().Truncate(time.Second)
			ck.Expires = &t
			ck.Lifetime = int64(t.Sub(now).Round(time.Second).Seconds())
		}
		if st, ok := s.setters[ck.Name]; ok {
			st.attribute(&ck)
		} else {
			s.unattributed = append(s.unattributed, len(p.Cookies))
		}
		p.Cookies = append(p.Cookies, ck)
	}
}

// pageState is what one look at a settled page finds: the banner's first
// layer and the page's links.
type pageState struct {
	Lang                  string
	Shown, Accept, Reject bool
	Links                 []string
	status                int // the page's HTTP status
}

// lookJS makes the script that reads a pageState: the banner's language is
// chosen as the banner chooses it (<html lang>, the browser's languages,
// the site's default) and its buttons are found by their texts.
func lookJS(site *config.Site, texts map[string]choiceTexts) string {
	langs, _ := json.Marshal(site.Languages)
	def, _ := json.Marshal(site.DefaultLanguage)
	t, _ := json.Marshal(texts)
	return `(() => {
const langs = ` + string(langs) + `, texts = ` + string(t) + `
const lang = [document.documentElement.lang, ...navigator.languages || []]
  .map(l => (l || '').slice(0, 2).toLowerCase()).find(l => langs.includes(l)) || ` + string(def) + `
const panel = ` + panelJS + `
const buttons = [...(panel?.querySelectorAll('button') || [])].map(b => b.textContent.trim())
// No more links than the scanner keeps, each short enough to be a page's
// address.
const links = []
for (const a of document.querySelectorAll('a[href]')) {
  if (links.length >= ` + strconv.Itoa(maxEntries) + `) break
  if (a.href.length <= 2048) links.push(a.href)
}
return { Lang: lang, Shown: !!panel,
  Accept: buttons.includes(texts[lang]?.accept), Reject: buttons.includes(texts[lang]?.reject),
  Links: links }
})()`
}

// sameOrigin keeps the links on the page's origin, without fragments.
func sameOrigin(pageURL string, hrefs []string) []string {
	base, _ := url.Parse(pageURL)
	var out []string
	for _, h := range hrefs {
		u, err := url.Parse(h)
		if err != nil || u.Scheme != base.Scheme || u.Host != base.Host {
			continue
		}
		u.Fragment, u.RawFragment = "", ""
		out = append(out, u.String())
	}
	return out
}

// choiceTexts are the first layer's button texts in one language.
type choiceTexts struct {
	Accept string `json:"accept"`
	Reject string `json:"reject"`
	Save   string `json:"save"` // the settings' "save my choice"
}

// bannerTexts reads the button texts of the site's languages from the
// banner version the site serves, and that version's hash.
func bannerTexts(s *config.Site) (map[string]choiceTexts, string, error) {
	b, err := static.BuildPlain(s)
	if err != nil {
		return nil, "", fmt.Errorf("banner texts: %w", err)
	}
	var v struct {
		Texts map[string]choiceTexts `json:"texts"`
	}
	if err := json.Unmarshal(b.Version, &v); err != nil {
		return nil, "", fmt.Errorf("banner texts: %w", err)
	}
	return v.Texts, b.Hash, nil
}

// pageLang is the banner's language on the page: <html lang>, then the
// browser's languages, then the site's default (as the banner chooses).
func (s *session) pageLang(ctx context.Context) (string, error) {
	langs, _ := json.Marshal(s.o.Site.Languages)
	return chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`[document.documentElement.lang, ...navigator.languages || []]
		.map(l => (l || '').slice(0, 2).toLowerCase()).find(l => %s.includes(l)) || %q`, langs, s.o.Site.DefaultLanguage)))
}

// panelJS finds the banner's open layer: a modal <dialog>, or a box or bar
// shown as a popover, in the shadow root of <koekje-banner>.
const panelJS = `document.querySelector('koekje-banner')?.shadowRoot?.querySelector('dialog[open], [role=dialog]:popover-open')`

// buttonJS finds a button of the banner's open layer by its text.
func buttonJS(text string) string {
	t, _ := json.Marshal(text)
	return `[...(` + panelJS + `?.querySelectorAll('button') || [])].find(b => b.textContent.trim() === ` + string(t) + `)`
}

// choose opens the first page and clicks "accept all" or "reject all" as
// a visitor would, then waits until the banner closed, its POST was
// answered and nothing waits in its retry queue; Withdrawn then withdraws
// that acceptance in the banner's settings. It records from then on,
// starting with what the choice left. Opening the page and each choice
// have a page timeout each. It reports whether a timeout ended it.
func (s *session) choose(p *scan.Profile, seen map[string]bool, profile, u string) (*pageState, bool, error) {
	ctx, cancel := s.step(s.o.PageTimeout)
	status, err := s.visit(ctx, u)
	timedOut := ctx.Err() != nil
	cancel()
	if err != nil {
		return nil, timedOut, err
	}
	ctx, cancel = s.step(s.o.PageTimeout)
	defer cancel()
	if err := s.click(ctx, profile); err != nil {
		return nil, ctx.Err() != nil, err
	}
	if profile == scan.Withdrawn {
		// Withdrawing has a page timeout of its own, as a second choice.
		cancel()
		ctx, cancel = s.step(s.o.PageTimeout)
		defer cancel()
		if err := s.withdraw(ctx); err != nil {
			return nil, ctx.Err() != nil, err
		}
	}
	s.mu.Lock()
	s.storage, s.requests, s.hosts = map[string]scan.StorageKey{}, nil, map[string]int{}
	s.tags, s.tagPages = nil, map[string]int{}
	delete(s.cut, cutStorage)
	delete(s.cut, cutRequests)
	delete(s.cut, cutTags)
	clear(s.cutIDs)
	s.mu.Unlock()
	st, err := s.snapshot(ctx, p, seen, u)
	if err != nil {
		return nil, ctx.Err() != nil, err
	}
	st.status = status
	return st, false, nil
}

// click clicks the profile's button and waits for the banner to be done.
func (s *session) click(ctx context.Context, profile string) error {
	lang, err := s.pageLang(ctx)
	if err != nil {
		return err
	}
	text := s.texts[lang].Reject
	if profile == scan.Accepted || profile == scan.Withdrawn {
		text = s.texts[lang].Accept
	}
	btn := buttonJS(text)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!(`+btn+`)`, chromedp.WithPollingTimeout(s.o.BannerTimeout))); err != nil {
		return fmt.Errorf("no %q button in the banner: %w", text, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.JSPath(btn))); err != nil {
		return fmt.Errorf("click %q: %w", text, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!`+panelJS+` && `+s.sentJS(), chromedp.WithPollingTimeout(s.o.PageTimeout))); err != nil {
		return fmt.Errorf("the banner did not close and get its answer after %q: %w", text, err)
	}
	return s.settle(ctx)
}

// sentJS is true once nothing waits in the banner's retry queue: its POSTs
// were answered.
func (s *session) sentJS() string {
	queue, _ := json.Marshal("koekje:" + s.o.Site.ID)
	return `(() => { try { return !localStorage.getItem(` + string(queue) + `) } catch (e) { return true } })()`
}

// settingsOpenerJS finds what opens the banner's settings on a page once
// a choice is made: the banner's floating button, else a link or button
// of the page marked data-koekje-settings that is on screen.
const settingsOpenerJS = `(document.querySelector('koekje-settings')?.shadowRoot?.querySelector('button:popover-open') ||
	[...document.querySelectorAll('[data-koekje-settings]')].find(e => e.getClientRects().length))`

// settingsJS finds the banner's settings layer.
const settingsJS = `document.querySelector('koekje-banner')?.shadowRoot?.querySelector('dialog[open][data-layer=settings]')`

// withdraw withdraws consent as a visitor would: it opens the banner's
// settings, switches off every category it may, saves, and waits until the
// settings closed and the withdrawal was answered.
func (s *session) withdraw(ctx context.Context) error {
	lang, err := s.pageLang(ctx)
	if err != nil {
		return err
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!`+settingsOpenerJS, chromedp.WithPollingTimeout(s.o.BannerTimeout))); err != nil {
		return fmt.Errorf("nothing on the page opens the banner's settings to withdraw consent (its settings button, or a link marked data-koekje-settings): %w", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.JSPath(settingsOpenerJS))); err != nil {
		return fmt.Errorf("open the banner's settings: %w", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!`+settingsJS, chromedp.WithPollingTimeout(s.o.PageTimeout))); err != nil {
		return fmt.Errorf("the banner's settings did not open: %w", err)
	}
	// A category's switch turns its services' switches with it; one that
	// is mixed turns on first, then off.
	on := `[...(` + settingsJS + `?.querySelectorAll('section > input[role=switch]:not(:disabled)') || [])].find(b => b.checked || b.indeterminate)`
	for range 2 * len(s.o.Site.Categories) {
		left, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!`+on))
		if err != nil {
			return err
		}
		if !left {
			break
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.JSPath(on))); err != nil {
			return fmt.Errorf("switch a category off: %w", err)
		}
	}
	save := s.texts[lang].Save
	t, _ := json.Marshal(save)
	btn := `[...(` + settingsJS + `?.querySelectorAll('button') || [])].find(b => b.textContent.trim() === ` + string(t) + `)`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!(`+btn+`)`, chromedp.WithPollingTimeout(s.o.BannerTimeout))); err != nil {
		return fmt.Errorf("no %q button in the banner's settings: %w", save, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.JSPath(btn))); err != nil {
		return fmt.Errorf("click %q: %w", save, err)
	}
	// The banner may stay open to offer a reload: what ran cannot be
	// unloaded. The visitor goes on to the next page instead.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!`+settingsJS+` && `+s.sentJS(), chromedp.WithPollingTimeout(s.o.PageTimeout))); err != nil {
		return fmt.Errorf("the banner's settings did not close and get their answer after %q: %w", save, err)
	}
	return s.settle(ctx)
}

// visited adds a page's visit to its profile and tells the caller's
// Visited hook, if any.
func (s *session) visited(p *scan.Profile, v scan.Visit) {
	p.Visits = append(p.Visits, v)
	if s.o.Visited != nil {
		s.o.Visited()
	}
}
