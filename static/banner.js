// Koekje's banner, first part: the first layer, the blocking of scripts and
// frames and Consent Mode's defaults. Minified by `go generate` into
// min/banner.js. A site's bundle puts the configuration and texts this part
// reads, their config_hash, the shadow roots' style and the address and
// SRI hash of the second part (more.js: the settings layer, the declaration
// and the placeholders' texts) in place of the KOEKJE_ names. Every text in
// CONFIG is a list in the order of the site's languages, the default
// language first.
const CSS = KOEKJE_CSS, HASH = KOEKJE_HASH, CONFIG = KOEKJE_CONFIG, MORE = KOEKJE_MORE, SRI = KOEKJE_SRI
const W = window, D = document, S = CONFIG.site, CATS = S.categories, SVCS = S.services, B = S.banner
const ATTR = 'data-category'
// This script is found by its address, not as document.currentScript,
// which a page may have redefined.
// The API is beside the banner's /s/: on Koekje's own origin, or under the
// prefix through which a first-party site's proxy forwards (/consent/s/…).
// There, on the page's own origin, the API's answers keep the choice in the
// koekje cookie, so that Safari keeps it as long as the site chose, and the
// banner never writes it (FP). Koekje under a prefix of an origin of its
// own is no first-party proxy: the banner keeps the choice itself.
const ME = D.querySelector(`script[src*="/s/${S.id}.js"]`), U = new URL('..', ME.src), BASE = U.href.slice(0, -1), FP = U.pathname != '/' && U.origin == location.origin
// In the console's preview, choices are neither kept nor sent.
const PREVIEW = ME.hasAttribute('data-koekje-preview')
const MODES = ['ad_storage', 'ad_user_data', 'ad_personalization', 'analytics_storage', 'functionality_storage', 'personalization_storage', 'security_storage']
const GPC = navigator.globalPrivacyControl === true

// The page's language, else the browser's, else the site's default.
const LANG = [D.documentElement.lang, ...navigator.languages || []].map(l => (l || '').slice(0, 2).toLowerCase())
  .find(l => S.languages.includes(l)) || S.languages[0]
const LI = S.languages.indexOf(LANG)
const T = new Proxy(CONFIG.texts, { get: (t, k) => t[k]?.[LI] })
const fill = (s, p) => s.replace(/\{p\}/g, p)
const tr = t => t[LI]

const QK = 'koekje:' + S.id
// localStorage throws where the visitor blocks site data.
const ls = f => { try { return f(localStorage) } catch (e) {} }
let queue = ls(l => JSON.parse(l[QK])) || []
// The stored choice: "1|consent id|revision|granted categories|granted services|token|gpc".
// Through a first-party proxy it comes with the API's answer: a choice the
// visitor left the page before that answer came for is still in the queue,
// and newer than the cookie.
const read = () => {
  const m = D.cookie.match(/(?:^|;\s*)koekje=([^;]*)/)
  const p = m ? decodeURIComponent(m[1]).split('|') : []
  const list = x => x ? x.split(',') : []
  const c = p[0] === '1' && p.length === 7 ? { id: p[1], rev: +p[2], cats: list(p[3]), svcs: list(p[4]), token: p[5], gpc: p[6] === '1' } : null
  const q = FP && queue.filter(x => x.action != 'load_once').pop()
  return q ? { ...c, rev: q.revision, cats: CATS.filter(x => !x.required && q.choices[x.id]).map(x => x.id), svcs: Object.keys(q.services || {}) } : c
}
const write = () => {
  if (PREVIEW || FP) return
  const v = ['1', st.id || '', S.revision, st.cats.join(), st.svcs.join(), st.token || '', st.gpc ? 1 : 0].join('|')
  D.cookie = `koekje=${encodeURIComponent(v)};path=/;max-age=${S.choice_months * 2630016 /* 30.44 days */};samesite=lax${location.protocol === 'https:' ? ';secure' : ''}`
}

const stored = PREVIEW ? null : read()
let decided = !!stored && stored.rev === S.revision
// Without a choice for this revision, only the ID and token carry over.
const st = stored || {}
if (!decided) st.cats = st.svcs = []
const listeners = []

const allowed = c => CATS.some(x => x.id === c && (x.required || decided && st.cats.includes(c)))
const svcOK = (cat, svc) => allowed(cat) || svc && st.svcs.includes(svc)

// Google Consent Mode v2: denied by default, before any tag can run.
W.dataLayer = W.dataLayer || []
const gtag = W.gtag = W.gtag || function () { W.dataLayer.push(arguments) }
const modes = () => {
  const m = {}
  for (const t of MODES) m[t] = 'denied'
  for (const c of CATS) for (const t of c.consent_mode || []) if (decided && allowed(c.id)) m[t] = 'granted'
  return m
}
gtag('consent', 'default', { ...modes(), wait_for_update: 500 })

// Blocked scripts and iframes come alive once their category (or service)
// is granted. A frame is replaced by a clone carrying src: Chromium drops a
// src set on a frame the parser is still inserting. _k marks a frame Koekje
// loaded (1) or loaded once (2); _b is its placeholder.
const blocked = `script[type="text/plain"][${ATTR}],iframe[${ATTR}][data-src]`
const ran = []
const activate = (el, once) => {
  if (el.tagName === 'IFRAME') {
    const f = el.cloneNode(true)
    f.src = el.dataset.src
    f.removeAttribute('data-src')
    f.style.removeProperty('display')
    f._k = once ? 2 : 1
    el._b?.remove()
    return el.replaceWith(f)
  }
  ran.push(el)
  const s = D.createElement('script')
  for (const a of el.attributes) if (a.name !== 'type') s.setAttribute(a.name, a.value)
  if (el.dataset.type) s.type = el.dataset.type
  s.async = false
  if (el.nonce) s.nonce = el.nonce
  s.text = el.text
  el.replaceWith(s)
}
const find = (root, q) => root.matches?.(q) ? [root] : root.querySelectorAll?.(q) || []
// A declaration asks for the second part the moment the parser adds it
// (before the first frame, where the banner's tag announced it).
const scan = root => {
  for (const el of find(root, blocked)) {
    if (svcOK(el.getAttribute(ATTR), el.dataset.service)) activate(el)
    else if (el.tagName === 'IFRAME' && !el._b) placeholder(el)
  }
  for (const el of find(root, '[data-koekje-declaration]')) later(m => m.d(el), el)
}
new MutationObserver(ms => { for (const m of ms) for (const n of m.addedNodes) if (n.nodeType === 1) scan(n) })
  .observe(D.documentElement, { childList: true, subtree: true })

// Small DOM helper: h('button', {class: 'x', onclick: f}, 'text', child…)
// Names the element has as properties (onclick, hidden, checked) are set as
// properties, the others (aria-*, data-*, for) as attributes.
const h = (tag, attrs, ...kids) => {
  const el = D.createElement(tag)
  for (const k in attrs) {
    const v = attrs[k]
    if (v === false || v == null) continue
    if (k in el) el[k] = v
    else el.setAttribute(k, v)
  }
  el.append(...kids.flat(2).filter(k => k))
  return el
}
// Buttons in a shadow root belong to no form of the page: no type needed.
const btn = (text, onclick, cls) => h('button', { class: cls, onclick }, text)
const link = (href, text) => h('a', { href, target: '_blank' }, text)
// One sheet for every shadow root; the second part adds the settings
// layer's style to it.
let sheet, css = CSS
const style = c => { css += c; sheet?.replaceSync(css) }
const shadow = (host, hostCSS = '') => {
  // The host element is styled by its page; only important inline styles
  // win over rules like * { all: unset } there.
  host.style.cssText = 'all:initial!important;display:block!important;' + hostCSS
  const root = host.attachShadow({ mode: 'open' })
  root.adoptedStyleSheets = [sheet = sheet || new CSSStyleSheet()]
  if (!sheet.cssRules.length) sheet.replaceSync(css)
  return root
}

// The second part, asked for as soon as this script runs, from its origin:
// its nonce and an SRI hash let the page's policy allow it as it allows
// this one. It hands over its functions through the element that loads it;
// a part that fails to load is asked for again the next time it is needed
// (Settings, a blocked embed, a declaration), and what waited for it is
// done once it comes.
// Asked for while <head> is parsed, it holds the page's first frame: until
// the page is parsed, if that finds no declaration in view, else until the
// second part has filled it in (for at most a second), so that nothing
// below a declaration moves. A tag in <body> holds nothing.
let M, loading, failed
const waiting = []
const more = () => loading = loading || new Promise((ok, no) => {
  const s = h('script', { src: new URL(MORE, ME.src), integrity: SRI, crossOrigin: 'anonymous', nonce: ME.nonce, blocking: 'render' })
  const go = () => s.blocking = ''
  setTimeout(go, 1e3)
  D.addEventListener('readystatechange', () => D.querySelector('[data-koekje-declaration]')?.getBoundingClientRect().top < innerHeight || go())
  // What waited is done as the second part runs, before the next frame.
  s.k = f => {
    ok(M = f(CONFIG, h, btn, link, T, tr, fill, policy, buttons, choose, record, current, activate, allowed, svcOK, st, BASE, LANG, GPC, style))
    for (const f of waiting.splice(0)) f(M)
  }
  s.onload = s.onerror = () => {
    s.remove()
    if (!M) no(loading = 0)
  }
  ;(D.head || D.documentElement).append(s)
})
// What needs the second part waits for it; where it could not load, a
// button says so and tries again.
const later = (f, el) => more().then(f, () => {
  waiting.push(f)
  el.replaceChildren(btn(T.failed, () => more().catch(() => {})))
})

// The page around a frame is dark when its first opaque background is.
// Placeholders follow it, whatever the system's colour scheme.
const darkPage = el => {
  for (; el; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor.match(/[\d.]+/g)
    if (c && c[3] !== '0') return c[0] * 0.3 + c[1] * 0.6 + c[2] * 0.1 < 128
  }
  return false // the canvas behind is white
}
const px = v => v && (isNaN(v) ? v : v + 'px')
// A blocked frame's placeholder takes the frame's size at once, so nothing
// moves when the second part fills in its words and buttons.
const placeholder = frame => {
  const box = frame._b = D.createElement('koekje-embed')
  const ph = h('div', { class: 'ph' + (darkPage(frame.parentElement) ? ' dark' : '') })
  const w = px(frame.getAttribute('width'))
  ph.style.minHeight = px(frame.getAttribute('height'))
  shadow(box, w ? `width:${w}!important;max-width:100%!important` : '').append(ph)
  // Page rules such as iframe { display: block } beat the hidden attribute.
  frame.style.setProperty('display', 'none', 'important')
  frame.before(box)
  later(m => box.isConnected && m.p(frame, ph), ph)
}

// Deleting the declared first-party cookies of everything refused, on this
// host and its parent domains, whatever was granted before. A cookie
// declared on a domain above this host (GA's _ga on the registrable
// domain) is ours to delete; one on another site's domain is not.
const clean = () => {
  const names = D.cookie.split(/;\s*/).map(c => c.split('=')[0])
  const hosts = location.hostname.split('.').map((_, i, a) => a.slice(i).join('.')).slice(0, -1)
  for (const s of SVCS) {
    if (svcOK(s.category, s.id)) continue
    for (const ck of s.cookies) {
      if (ck.domain && !('.' + location.hostname).endsWith('.' + ck.domain)) continue
      const pre = ck.name.endsWith('*') && ck.name.slice(0, -1)
      for (const n of names) {
        if (pre ? !n.startsWith(pre) : n !== ck.name) continue
        for (const d of ['', ...hosts]) D.cookie = `${n}=;path=/;max-age=0${d && ';domain=' + d}`
      }
    }
  }
}

// Saving or withdrawing is announced to screen readers and shown for a few
// seconds, in a live region that is there before it speaks (made when the
// banner opens), on top of the page.
let live, quiet
const region = () => {
  if (!live && D.body) {
    shadow(D.body.appendChild(D.createElement('koekje-status')))
      .append(live = h('p', { class: 'k st', role: 'status', popover: 'manual' }))
    live.showPopover()
  }
}
const say = text => {
  region()
  clearTimeout(quiet)
  setTimeout(() => {
    live.hidePopover()
    live.showPopover()
    live.textContent = text
    place(live, 32)
    quiet = setTimeout(() => { live.textContent = '' }, 5e3)
  }, 99)
}

// Recording a choice: keep it in the cookie at once, stop what was refused,
// tell the page, send it, and say so unless the browser chose (GPC) or
// this is the console's preview.
const choose = (action, cats, svcs, quietly) => {
  const was = [...CATS.map(c => c.id).filter(allowed), ...st.svcs]
  st.cats = CATS.filter(c => !c.required && cats.includes(c.id)).map(c => c.id)
  st.svcs = [...new Set(svcs)]
  st.gpc = GPC && action === 'reject_all'
  decided = true
  write()
  clean()
  const revoked = was.filter(x => !allowed(x) && !st.svcs.includes(x))
  if (action === 'custom' && revoked.length && !st.cats.length && !st.svcs.length) action = 'withdraw'
  // Embeds of what was refused go back behind their placeholders; scripts
  // that already ran cannot be unloaded, so the visitor is offered a reload.
  for (const f of D.querySelectorAll(`iframe[${ATTR}]`)) {
    if (f._k !== 1 || svcOK(f.getAttribute(ATTR), f.dataset.service)) continue
    const g = f.cloneNode(true)
    g.dataset.src = f.getAttribute('src')
    g.removeAttribute('src')
    f.replaceWith(g)
  }
  const stale = ran.some(s => !svcOK(s.getAttribute(ATTR), s.dataset.service))
  gtag('consent', 'update', modes())
  scan(D)
  const choices = current()
  // The reload layer's words come with the second part; without it (the
  // settings failed to load) the banner just closes.
  if (stale && host && M) render('reload')
  else close()
  if (!quietly && !PREVIEW) say(action === 'withdraw' ? T.withdrawn : T.saved)
  for (const f of listeners) try { f({ action, choices, services: st.svcs, revoked }) } catch (e) { setTimeout(() => { throw e }) }
  record(action, choices, st.svcs)
}
const current = () => Object.fromEntries(CATS.map(c => [c.id, allowed(c.id)]))

// Proof: choices go to the server one at a time, oldest first, each with a
// request ID of its own, so a retry is never recorded twice. A failed POST is
// retried with backoff; what is not yet acknowledged waits in the queue (in
// localStorage, read at the start) for the next page load. Every answer
// carries the visitor's newest token.
let busy, wait, refused
const send = () => {
  ls(l => queue.length ? l[QK] = JSON.stringify(queue) : l.removeItem(QK))
  if (busy || refused || !queue.length) return
  busy = 1
  // The site in the path lets a load balancer route a site's writes. Only
  // through a first-party proxy is the POST same-origin: then it carries
  // the site's cookies, so that a refusal expires the HttpOnly ones too.
  fetch(`${BASE}/api/v1/sites/${S.id}/consents`, {
    method: 'POST', keepalive: true,
    body: JSON.stringify({ ...queue[0], consent_id: st.id || null, token: st.token || null })
  }).then(r => {
    // A refused origin is the site's configuration to fix: said in the
    // console, and the choice kept for a later page, not sent again here.
    if (r.status === 403) return r.json().then(j => { console.error('Koekje: ' + j.error.message); refused = 1; throw r })
    if (r.status > 499 || r.status === 429) throw r
    return r.json()
  }).then(j => {
    // The server's word to the visitor: that their choice overrode their
    // browser's Global Privacy Control setting. What the browser's ADPC
    // header refused, which the page cannot see, is applied here.
    if (j.note) say(j.note)
    if (j.granted) choose('custom', j.granted, j.services, 1)
    if (j.consent_id) {
      st.id = j.consent_id
      st.token = j.token
      if (decided) write()
      M?.i()
    }
    queue.shift()
    wait = 0
  }, () => { wait = Math.min(wait * 2 || 1e3, 6e4) }).then(() => { busy = 0; setTimeout(send, wait) })
}
const record = (action, choices, svcs) => {
  if (PREVIEW) return
  queue.push({
    choices, action, revision: S.revision, config_hash: HASH, language: LANG,
    services: svcs.length ? Object.fromEntries(svcs.map(s => [s, true])) : undefined,
    url: location.origin + location.pathname, gpc: GPC,
    request_id: Date.now() + '-' + crypto.getRandomValues(new Uint32Array(2)).join('-')
  })
  send()
}
send()

// The banner lives in the top layer, out of reach of the page's transforms,
// overflow and stacking: the first layer in the site's layout (a box or a
// bar as a popover that leaves the page usable, or a modal <dialog> that
// makes it inert), with three equal choices; the settings layer always in
// the modal, with a sticky header and action bar.
let host, dialog, back, fab
const close = () => {
  if (!host) return
  host.remove()
  host = null
  button()
  back?.focus?.()
}
const esc = () => {
  if (dialog.dataset.layer === 'settings' && !decided) show()
  else if (dialog.dataset.layer !== 'first') close()
}
// The floating settings button, so a choice can be changed from any page:
// shown once a choice is made, while the banner is closed, unless the site
// turned it off or (by default) the page has a settings link of its own.
const button = (m = B.settings_button.show) => {
  if (!fab && D.body && m !== 'never') {
    shadow(D.body.appendChild(D.createElement('koekje-settings')))
      .append(fab = h('button', { class: 'fab', popover: 'manual', onclick: () => show('settings') }, T.cookies))
  }
  fab?.togglePopover(decided && !host && (m === 'always' || !D.querySelector('[data-koekje-settings]')))
  place(fab, 32)
}
// The page is inert behind the modal dialog, but Tab would still leave it
// for the browser's own controls.
const onKey = e => {
  if (e.key === 'Escape') {
    e.preventDefault()
    e.stopPropagation()
    esc()
  }
  if (e.key !== 'Tab' || !host._m) return
  const f = [...dialog.querySelectorAll('button,input,a,summary')].filter(x => x.getClientRects().length)
  const i = f.indexOf(host.shadowRoot.activeElement), n = f.length - 1
  if (e.shiftKey ? i < 1 : i === n) { f[e.shiftKey ? n : 0].focus(); e.preventDefault() }
}
const buttons = extra => h('div', { class: 'row acts' },
  btn(T.accept, () => choose('accept_all', CATS.map(c => c.id), []), 'main'),
  btn(T.reject, () => choose('reject_all', [], []), 'main'),
  extra)
const policy = () => link(S.controller.privacy_policy, fill(T.privacy, S.controller.organisation))

const render = layer => {
  dialog.dataset.layer = layer
  // The settings are titled as the button and links that open them.
  let body, acts, title = T.cookies
  if (layer === 'first') {
    title = T.title
    body = h('p', { id: 'k-d' }, T.intro, ' ', policy())
    acts = buttons(btn(failed && !M ? T.failed : T.settings, () => show('settings')))
  } else if (layer === 'reload') {
    title = T.title
    body = h('p', { id: 'k-d' }, T.stale)
    acts = h('div', { class: 'row acts' }, btn(T.reload, () => location.reload(), 'main'), btn(T.close, close))
  } else [body, acts] = M.s(dialog)
  dialog.replaceChildren(
    h('div', { class: 'top' }, h('h2', { id: 'k-t', tabIndex: -1 }, title),
      layer !== 'first' && h('button', { class: 'x', onclick: esc, 'aria-label': T.close }, '×')),
    h('div', { class: 'body' }, body), acts)
  // The settings have no one paragraph that describes them.
  dialog[layer === 'settings' ? 'removeAttribute' : 'setAttribute']('aria-describedby', 'k-d')
  dialog.querySelector('h2').focus()
}

// On a phone whose page is wider than the screen, fixed boxes are placed in
// a layout viewport larger than what is shown: the banner, the settings
// button and the confirmation are sized to the visual viewport and moved
// into it, in the same corner or centre they have in the layout viewport.
// Where that box is only the visual viewport (a desktop's scrollbar
// aside) nothing is touched; a page the visitor zooms into is left as the
// browser shows it.
const place = (el, gap) => {
  const v = W.visualViewport, s = el?.style
  if (!v || !s) return
  s.translate = s.maxWidth = s.maxHeight = ''
  if (v.scale > 1) return
  const r = el.getBoundingClientRect(), m = el.computedStyleMap(), c = getComputedStyle(el)
  // Along one axis: held at its start (left: 16px), or by both insets with
  // its room after it, it moves with the visual viewport; held at its end,
  // or with its room before it (a sheet at the foot), it keeps its distance
  // to the end of the box it is placed in; else it is centred in that box.
  const by = (a, b, lo, hi, o, size) => {
    const B = m.get(b), ma = parseFloat(c['margin-' + a]), mb = parseFloat(c['margin-' + b]), end = hi + mb + B.value
    return B == 'auto' || mb > ma + 1 ? o : m.get(a) == 'auto' || ma > mb + 1 ? o + size - end : o + (size - end) / 2
  }
  const x = by('left', 'right', r.left, r.right, v.offsetLeft, v.width)
  const y = by('top', 'bottom', r.top, r.bottom, v.offsetTop, v.height)
  if (Math.abs(x) + Math.abs(y) > 1) s.translate = x + 'px ' + y + 'px'
  // Narrower, it may grow taller.
  if (r.width > v.width - gap) s.maxWidth = v.width - gap + 'px'
  if (el.getBoundingClientRect().height > v.height - gap) s.maxHeight = v.height - gap + 'px'
}
const fit = () => {
  if (host) place(dialog, dialog.classList.contains('box') ? 24 : 0)
  place(fab, 32)
  place(live, 32)
}
W.visualViewport?.addEventListener('scroll', fit)
W.visualViewport?.addEventListener('resize', fit)
W.addEventListener('resize', fit)

const show = (layer = 'first') => {
  if (layer === 'settings' && !M) {
    return more().then(() => show(layer), () => {
      failed = 1
      show()
      dialog.querySelector('.acts button:last-child').focus()
    })
  }
  const modal = layer !== 'first' || B.layout === 'modal'
  if (!host || host._m !== modal) {
    if (host) host.remove()
    // Focus returns to what had it: the settings button in its shadow root.
    else back = (back = D.activeElement) && back.shadowRoot ? back.shadowRoot.activeElement : back
    host = D.createElement('koekje-banner')
    host._m = modal
    shadow(host).append(dialog = h(modal ? 'dialog' : 'div', {
      class: modal ? 'k' : 'k ' + B.layout, role: !modal && 'dialog', popover: !modal && 'manual',
      'aria-labelledby': 'k-t', lang: LANG, dir: 'ltr', onkeydown: onKey, oncancel: e => e.preventDefault()
    }))
    // Before <body> exists the banner goes into <html>, so it is on screen
    // in the page's first frame.
    ;(D.body || D.documentElement).append(host)
    if (modal) dialog.showModal()
    else dialog.showPopover()
    button()
  }
  render(layer)
  fit()
  region()
}

D.addEventListener('click', e => {
  if (e.target.closest?.('[data-koekje-settings]')) { e.preventDefault(); show('settings') }
})

const start = () => {
  scan(D)
  button()
  fit()
  if (host) region()
}
more().catch(() => {})
if (D.readyState === 'loading') D.addEventListener('DOMContentLoaded', start)
else start()
if (!decided) {
  if (GPC) choose('reject_all', [], [], 1)
  else show()
}

W.koekje = {
  allowed,
  show: () => show('settings'),
  on: (ev, fn) => { if (ev === 'change') listeners.push(fn) },
  consentId: () => st.id || null
}
