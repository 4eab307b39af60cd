// Koekje's banner. The server prepends CONFIG (the site and its texts), HASH
// (the config_hash of what is shown) and CSS, then minifies the whole.
const W = window, D = document, S = CONFIG.site, CATS = S.categories
const NAME = 'koekje', ATTR = 'data-category'
const BASE = new URL(D.currentScript.src).origin
// In the console's preview, choices are neither kept nor sent.
const PREVIEW = D.currentScript.hasAttribute('data-koekje-preview')
const MODES = ['ad_storage', 'ad_user_data', 'ad_personalization', 'analytics_storage',
  'functionality_storage', 'personalization_storage', 'security_storage']
const GPC = navigator.globalPrivacyControl === true

const pickLang = () => {
  const wants = [D.documentElement.lang, ...(navigator.languages || [])]
  for (const l of wants) {
    const code = (l || '').slice(0, 2).toLowerCase()
    if (S.languages.includes(code)) return code
  }
  return S.default_language
}
const LANG = pickLang(), T = CONFIG.texts[LANG]
const fill = (s, p) => s.replace(/\{p\}/g, p)
const tr = t => t[LANG] || t[S.default_language]

// The stored choice: "1|consent id|revision|granted categories|granted services|token|gpc".
const read = () => {
  const m = D.cookie.match(/(?:^|;\s*)koekje=([^;]*)/)
  const p = m ? decodeURIComponent(m[1]).split('|') : []
  if (p[0] !== '1' || p.length !== 7) return null
  return { id: p[1], rev: +p[2], cats: p[3] ? p[3].split(',') : [], svcs: p[4] ? p[4].split(',') : [], token: p[5], gpc: p[6] === '1' }
}
const write = () => {
  if (PREVIEW) return
  const v = ['1', st.id || '', S.revision, st.cats.join(), st.svcs.join(), st.token || '', st.gpc ? 1 : 0].join('|')
  D.cookie = `${NAME}=${encodeURIComponent(v)};path=/;max-age=${Math.round(S.choice_months * 30.44 * 86400)};samesite=lax${location.protocol === 'https:' ? ';secure' : ''}`
}

let stored = PREVIEW ? null : read()
const current = stored && stored.rev === S.revision
let st = stored || { cats: [], svcs: [] }
if (!current) st = { id: st.id, token: st.token, cats: [], svcs: [] }
const listeners = []

const allowed = c => CATS.some(x => x.id === c && (x.required || (current || decided) && st.cats.includes(c)))
let decided = false
const svcAllowed = (cat, svc) => allowed(cat) || (svc && st.svcs.includes(svc))

// Google Consent Mode v2: denied by default, before any tag can run.
W.dataLayer = W.dataLayer || []
const gtag = W.gtag = W.gtag || function () { W.dataLayer.push(arguments) }
const modes = () => {
  const m = {}
  for (const t of MODES) m[t] = 'denied'
  for (const c of CATS) for (const t of c.consent_mode || []) if ((current || decided) && allowed(c.id)) m[t] = 'granted'
  return m
}
gtag('consent', 'default', { ...modes(), wait_for_update: 500 })

// Blocked scripts and iframes come alive once their category (or service) is granted.
const blocked = `script[type="text/plain"][${ATTR}],iframe[${ATTR}][data-src]`
const activate = el => {
  if (el.tagName === 'IFRAME') {
    el.src = el.dataset.src
    el.removeAttribute('data-src')
    el.hidden = false
    if (el.koekjeBox) el.koekjeBox.remove()
    return
  }
  const s = D.createElement('script')
  for (const a of el.attributes) if (a.name !== 'type') s.setAttribute(a.name, a.value)
  if (el.dataset.type) s.type = el.dataset.type
  s.async = false
  if (el.nonce) s.nonce = el.nonce
  s.text = el.text
  el.replaceWith(s)
}
const scan = root => {
  const els = root.matches && root.matches(blocked) ? [root] : [...(root.querySelectorAll ? root.querySelectorAll(blocked) : [])]
  for (const el of els) {
    if (svcAllowed(el.getAttribute(ATTR), el.dataset.service)) activate(el)
    else if (el.tagName === 'IFRAME' && !el.koekjeBox) placeholder(el)
  }
}
new MutationObserver(ms => { for (const m of ms) for (const n of m.addedNodes) if (n.nodeType === 1) scan(n) })
  .observe(D.documentElement, { childList: true, subtree: true })

// Small DOM helper: h('button', {class: 'x', onclick: f}, 'text', child…)
const h = (tag, attrs, ...kids) => {
  const el = D.createElement(tag)
  for (const k in attrs || {}) {
    const v = attrs[k]
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else if (v === true) el.setAttribute(k, '')
    else if (v !== false && v != null) el.setAttribute(k, v)
  }
  el.append(...kids.flat().filter(k => k != null))
  return el
}
let sheet
const shadow = host => {
  const root = host.attachShadow({ mode: 'open' })
  if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(CSS) }
  root.adoptedStyleSheets = [sheet]
  return root
}
const serviceOf = id => S.services.find(s => s.id === id)

const placeholder = frame => {
  const cat = CATS.find(c => c.id === frame.getAttribute(ATTR))
  const svc = serviceOf(frame.dataset.service)
  const who = svc ? svc.provider : cat ? tr(cat.title) : '?'
  const box = frame.koekjeBox = D.createElement('koekje-embed')
  if (frame.width) box.style.width = frame.width + (/^\d+$/.test(frame.width) ? 'px' : '')
  if (frame.height) box.style.height = frame.height + (/^\d+$/.test(frame.height) ? 'px' : '')
  const label = frame.title ? `${frame.title} (${who})` : who
  shadow(box).append(h('div', { class: 'ph', role: 'region', 'aria-label': label },
    h('p', null, fill(T.blocked, who)),
    h('div', { class: 'row' },
      h('button', { type: 'button', onclick: () => activate(frame) }, T.once),
      h('button', { type: 'button', onclick: () => svc ? choose('custom', null, svc.id) : choose('custom', { ...Object.fromEntries(allowed_list().map(c => [c, true])), [cat.id]: true }) }, fill(T.allow, who)))))
  frame.hidden = true
  frame.before(box)
}

// Deleting a withdrawn category's cookies on this host and its parent domains.
const clearCookies = cat => {
  const names = D.cookie.split(/;\s*/).map(c => c.split('=')[0])
  const hosts = location.hostname.split('.').map((_, i, a) => a.slice(i).join('.')).slice(0, -1)
  for (const s of S.services) {
    if (s.category !== cat) continue
    for (const ck of s.cookies) {
      if (ck.domain) continue
      const pre = ck.name.endsWith('*') && ck.name.slice(0, -1)
      for (const n of names) {
        if (pre ? !n.startsWith(pre) : n !== ck.name) continue
        for (const d of ['', ...hosts]) D.cookie = `${n}=;path=/;max-age=0${d && ';domain=' + d}`
      }
    }
  }
}

// Recording a choice: keep it in the cookie at once, tell the page, send it.
const choose = (action, picks, service) => {
  const before = new Set(allowed_list())
  const cats = CATS.filter(c => !c.required && (action === 'accept_all' || picks && picks[c.id] || picks === null && allowed(c.id)))
  st.cats = cats.map(c => c.id)
  if (action !== 'custom') st.svcs = []
  if (service && !st.svcs.includes(service)) st.svcs.push(service)
  st.gpc = GPC && action === 'reject_all'
  decided = true
  write()
  for (const c of before) if (!allowed(c)) clearCookies(c)
  if (action === 'custom' && before.size > 1 && CATS.every(c => c.required || !allowed(c.id)) && !st.svcs.length) action = 'withdraw'
  gtag('consent', 'update', modes())
  scan(D)
  close()
  const choices = {}
  for (const c of CATS) choices[c.id] = allowed(c.id)
  for (const f of listeners) try { f({ action, choices }) } catch (e) { setTimeout(() => { throw e }) }
  if (!PREVIEW) fetch(BASE + '/api/v1/consents', {
    method: 'POST', keepalive: true, credentials: 'omit',
    body: JSON.stringify({
      site: S.id, consent_id: st.id || null, token: st.token || null, choices,
      services: st.svcs.length ? Object.fromEntries(st.svcs.map(s => [s, true])) : undefined,
      action, revision: S.revision, config_hash: HASH, language: LANG,
      url: location.origin + location.pathname, gpc: GPC
    })
  }).then(r => r.ok && r.json()).then(j => {
    if (j && j.consent_id) { st.id = j.consent_id; st.token = j.token; write(); if (idBox) idBox.replaceWith(idLine()) }
  }).catch(() => {})
}
const allowed_list = () => CATS.filter(c => allowed(c.id)).map(c => c.id)

// The dialog: a first layer with three equal choices, and a settings layer.
let host, dialog, back, idBox
const close = () => {
  if (!host) return
  host.remove()
  host = null
  if (back && back.focus) back.focus()
}
const focusables = () => [...dialog.querySelectorAll('button,input:not([disabled]),a[href],summary')]
const onKey = e => {
  if (e.key === 'Escape' && dialog.dataset.layer === 'settings') {
    e.stopPropagation()
    if (current || decided) close()
    else render('first')
  }
  if (e.key !== 'Tab') return
  const f = focusables(), i = f.indexOf(host.shadowRoot.activeElement)
  if (e.shiftKey && i <= 0) { f[f.length - 1].focus(); e.preventDefault() }
  else if (!e.shiftKey && i === f.length - 1) { f[0].focus(); e.preventDefault() }
}
const buttons = extra => h('div', { class: 'row' },
  h('button', { type: 'button', class: 'main', onclick: () => choose('accept_all') }, T.accept),
  h('button', { type: 'button', class: 'main', onclick: () => choose('reject_all') }, T.reject),
  extra)
const duration = d => {
  const m = /^(\d+)(\w+)$/.exec(d)
  return m ? `${m[1]} ${T.units[m[2]][+m[1] === 1 ? 0 : 1]}` : T.session
}
const idLine = () => idBox = st.id
  ? h('p', { class: 'id' }, `${T.id}: `, h('code', null, st.id), ' · ',
    h('a', { href: `${BASE}/api/v1/consents/${st.id}/receipt?token=${encodeURIComponent(st.token || '')}`, target: '_blank', rel: 'noopener' }, T.receipt))
  : h('p', { class: 'id' })

const render = layer => {
  dialog.dataset.layer = layer
  const c = S.controller
  const policy = h('a', { href: c.privacy_policy, target: '_blank', rel: 'noopener' }, T.privacy.replace('{o}', c.organisation))
  if (layer === 'first') {
    dialog.replaceChildren(
      h('h2', { id: 'k-t', tabindex: '-1' }, T.title),
      h('p', { id: 'k-d' }, (S.intro && tr(S.intro)) || T.intro, ' ', policy),
      buttons(h('button', { type: 'button', onclick: () => render('settings') }, T.settings)))
  } else {
    const boxes = {}
    dialog.replaceChildren(
      h('h2', { id: 'k-t', tabindex: '-1' }, T.settingsTitle),
      GPC ? h('p', { class: 'note' }, T.gpc) : null,
      h('div', { class: 'cats' }, CATS.map(cat => {
        const svcs = S.services.filter(s => s.category === cat.id)
        const box = boxes[cat.id] = h('input', {
          type: 'checkbox', role: 'switch', id: 'k-' + cat.id, 'aria-describedby': 'k-d-' + cat.id,
          checked: allowed(cat.id), disabled: cat.required
        })
        return h('section', { class: 'cat' },
          h('div', { class: 'head' }, h('label', { for: 'k-' + cat.id }, tr(cat.title)), cat.required ? h('span', { class: 'on' }, T.always) : null, box),
          h('p', { id: 'k-d-' + cat.id }, tr(cat.description)),
          svcs.length ? h('details', null, h('summary', null, `${T.cookies} (${svcs.reduce((n, s) => n + s.cookies.length, 0)})`),
            svcs.map(s => h('div', { class: 'svc' },
              h('p', null, h('strong', null, s.provider), s.privacy_policy ? [' · ', h('a', { href: s.privacy_policy, target: '_blank', rel: 'noopener' }, fill(T.policy, s.provider))] : null),
              h('ul', null, s.cookies.map(ck => h('li', null, h('code', null, ck.name), ` — ${tr(ck.purpose)} (${duration(ck.duration)})`)))))) : null)
      })),
      idLine(),
      buttons(h('button', { type: 'button', onclick: () => choose('custom', Object.fromEntries(CATS.map(c => [c.id, boxes[c.id].checked]))) }, T.save)),
      policy)
  }
  dialog.querySelector('h2').focus()
}

const show = (layer = 'first') => {
  if (!D.body) return D.addEventListener('DOMContentLoaded', () => show(layer))
  if (!host) {
    back = D.activeElement
    host = D.createElement('koekje-banner')
    const root = shadow(host)
    root.append(h('div', { class: 'back' }), dialog = h('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'k-t', 'aria-describedby': 'k-d', lang: LANG, onkeydown: onKey }))
    D.body.append(host)
  }
  render(layer)
}

// The cookie declaration: every service and cookie, in the page's language.
const declaration = el => {
  const th = (...c) => h('tr', null, c.map(x => h('th', { scope: 'col' }, x)))
  el.replaceChildren(h('table', { class: 'koekje-declaration' },
    h('thead', null, th(T.name, T.provider, T.category, T.duration, T.purpose)),
    h('tbody', null, S.services.flatMap(s => s.cookies.map(ck => h('tr', null,
      h('td', null, h('code', null, ck.name)), h('td', null, s.provider),
      h('td', null, tr(CATS.find(c => c.id === s.category).title)),
      h('td', null, duration(ck.duration)), h('td', null, tr(ck.purpose))))))))
}

D.addEventListener('click', e => {
  const t = e.target.closest && e.target.closest('[data-koekje-settings]')
  if (t) { e.preventDefault(); show('settings') }
})

const start = () => {
  scan(D)
  D.querySelectorAll('[data-koekje-declaration]').forEach(declaration)
  if (current) return
  if (GPC) choose('reject_all')
  else show()
}
if (D.readyState === 'loading') D.addEventListener('DOMContentLoaded', start)
else start()

W.koekje = {
  allowed,
  show: () => show('settings'),
  on: (ev, fn) => { if (ev === 'change') listeners.push(fn) },
  consentId: () => st.id || null
}
