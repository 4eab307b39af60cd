// Koekje's banner, second part: the settings layer, the cookie declaration
// and the placeholders' words and buttons, which a visitor who answers the
// first layer never needs. Minified by `go generate` into min/more.js with
// the first part's names for the configuration's keys. A site's bundle puts
// the rest of its configuration and texts (the keys the first part does not
// read), the settings layer's style and the declaration's style in place
// of the KOEKJE_ names. The first
// part loads this script and hands it what it shares, in this order,
// through the script element (k). That is the current script, unless the
// page redefined document.currentScript: then the script that carries k.
;[document.currentScript, ...document.scripts].find(s => s?.k).k((CONFIG, h, btn, link, T, tr, fill, policy, buttons, choose, record, current, activate, allowed, svcOK, st, BASE, LANG, GPC, style) => {
  const DCSS = KOEKJE_DCSS, D = document
  style(KOEKJE_SCSS)
  // Both halves of the configuration are one object from now on: objects
  // and lists join key by key and item by item.
  const merge = (a, b) => {
    for (const k in b) a[k] = a[k] && typeof a[k] === 'object' ? merge(a[k], b[k]) : b[k]
    return a
  }
  merge(CONFIG, KOEKJE_REST)
  const S = CONFIG.site, CATS = S.categories, SVCS = S.services
  const catOf = id => CATS.find(c => c.id === id)
  // put places a node where a text says {a}.
  const put = (s, n) => { const [a, b] = s.split('{a}'); return [a, n, b] }

  // "2y" in words, by the browser: "2 jaar", "2 Jahre", "2 ans". The texts
  // hold "session", and each duration the site names in a language whose
  // words for them browsers lack.
  const UNITS = { h: 'hour', d: 'day', w: 'week', mo: 'month', y: 'year' }
  const duration = d => {
    const m = /^(\d+)(\w+)$/.exec(d)
    return T[d] || new Intl.NumberFormat(LANG, { style: 'unit', unit: UNITS[m[2]], unitDisplay: 'long' }).format(m[1])
  }
  // How long a service or a cookie keeps its data, as a sentence.
  const kept = r => r && [h('br'), fill(T.retention, duration(r))]
  let idBox
  const idLine = () => idBox = h('p', { class: 'id' }, st.id && [`${T.id}: `, h('code', null, st.id), ' · ',
    link(`${BASE}/api/v1/consents/${st.id}/receipt?token=${encodeURIComponent(st.token || '')}`, T.receipt)])
  // Who is responsible, and where a visitor may complain.
  const who = () => {
    const c = S.controller, a = S.authority
    return h('p', { class: 'who' }, put(T.who, [[c.organisation, c.address].filter(x => x).join(', ') + ', ', h('a', { href: 'mailto:' + c.email }, c.email)]),
      ' ', a && put(T.complain, link(a.url, a.name)))
  }
  // A table of cookies; each cell names its column for narrow layouts, where
  // the declaration shows a cookie as labelled lines.
  const table = (cls, heads, rows) => h('table', { class: cls }, h('thead', null, h('tr', null, heads.map(x => h('th', null, x)))),
    h('tbody', null, rows.map(r => h('tr', null, r.map((x, i) => h('td', { 'data-l': heads[i] }, x))))))
  const sw = (id, label, on, off) => h('input', { type: 'checkbox', role: 'switch', id, 'aria-label': label, checked: on, disabled: off })

  // The settings layer's body and actions, in the dialog the first part made.
  const settings = dialog => {
    const body = [GPC && h('p', { class: 'note' }, T.gpc), CATS.map(cat => {
      const id = 'k-' + cat.id, svcs = SVCS.filter(s => s.category === cat.id)
      const box = sw(id, tr(cat.title), allowed(cat.id), cat.required)
      const subs = cat.required ? [] : svcs.map(s => sw('k-s-' + s.id, s.name, svcOK(cat.id, s.id)))
      const sync = () => {
        const n = subs.filter(b => b.checked).length
        box.checked = n && n === subs.length
        box.indeterminate = n && n < subs.length
      }
      box.onchange = () => { for (const b of subs) b.checked = box.checked }
      for (const b of subs) b.onchange = sync
      if (subs.length) sync()
      // A native disclosure: the summary opens the row; the switch beside it
      // is no part of it, so no control sits inside another.
      const more = h('details', { id: id + '-b' }, h('summary', null, tr(cat.title)),
        h('p', { id: id + '-d' }, tr(cat.description)),
        svcs.map((s, i) => h('div', { class: 'svc' },
          h('div', { class: 'head' }, subs[i] ? [h('label', { for: subs[i].id }, s.name), subs[i]] : h('strong', null, s.name)),
          h('p', null, s.provider, s.privacy_policy && [' · ', link(s.privacy_policy, fill(T.privacy, s.provider))]),
          table(null, [T.name, T.purpose, T.duration], s.cookies.map(ck => [h('code', null, ck.name), [tr(ck.purpose), kept(ck.retention || s.retention)], duration(ck.duration)])))))
      box.setAttribute('aria-describedby', id + '-d')
      return h('section', { class: 'cat' }, more, cat.required && h('span', { class: 'on' }, T.always), box)
    }), idLine(), who(), h('p', null, policy())]
    const on = id => dialog.querySelector('#k-' + id)?.checked
    return [body, buttons(btn(T.save, () => {
      const c = CATS.map(c => c.id).filter(on)
      choose('custom', c, SVCS.filter(s => !c.includes(s.category) && on('s-' + s.id)).map(s => s.id))
    }))]
  }

  // A blocked frame's placeholder, centred in the frame's box: the
  // content's title (the frame's), who provides it, who would see the
  // visit and their privacy statement, and the two ways to load it, the
  // lasting one first and primary. Only a link: nothing of the provider's
  // is fetched before a choice.
  const placeholder = (frame, ph) => {
    const cat = frame.getAttribute('data-category'), svc = SVCS.find(s => s.id === frame.dataset.service)
    const who = svc ? svc.name : tr(catOf(cat).title)
    ph.setAttribute('role', 'region')
    ph.setAttribute('aria-label', frame.title ? `${frame.title} (${who})` : who)
    ph.replaceChildren(frame.title && h('strong', null, frame.title),
      h('p', null, fill(T.blocked, who), svc?.privacy_policy && [' ', link(svc.privacy_policy, fill(T.privacy, svc.provider))]),
      h('div', { class: 'row' },
        btn(fill(T.allow, who), () => svc ? choose('custom', st.cats, [...st.svcs, svc.id]) : choose('custom', [...st.cats, cat], st.svcs), 'main'),
        // Loading once grants nothing beyond this page view, but is recorded.
        btn(T.once, () => { activate(frame, 1); if (svc) record('load_once', current(), [svc.id]) })))
  }

  // The cookie declaration: every service and cookie, in the page's language.
  let dsheet
  const declaration = el => {
    if (!dsheet) {
      dsheet = new CSSStyleSheet()
      dsheet.replaceSync(DCSS)
      D.adoptedStyleSheets = [...D.adoptedStyleSheets, dsheet]
    }
    el.replaceChildren(table('koekje-declaration', [T.name, T.provider, T.domain, T.category, T.duration, T.purpose],
      SVCS.flatMap(s => s.cookies.map(ck => [h('code', null, ck.name), s.privacy_policy ? link(s.privacy_policy, s.provider) : s.provider,
        ck.domain || location.hostname, tr(catOf(s.category).title), duration(ck.duration), [tr(ck.purpose), kept(ck.retention || s.retention)]]))), who())
  }

  // s: the settings layer; p: a placeholder; d: a declaration; i: the
  // consent ID shown in the settings, once the server has given one.
  return { s: settings, p: placeholder, d: declaration, i: () => idBox?.replaceWith(idLine()) }
})
