// Checks a Koekje receipt in the browser, as `koekje verify-receipt` does:
// the JWT (EdDSA) against the JWKS, the record's hash recomputed from the
// canonical record it carries, then, with a tlog-proof, the leaf rebuilt
// from the receipt's record hash, the inclusion proof (RFC 6962), the log's
// signature on the checkpoint (signed note) and witnesses' cosignatures
// (cosignature/v1), as many as the log's witness policy (C2SP tlog-policy)
// asks. WebCrypto does the hashing and Ed25519.
'use strict'
const enc = new TextEncoder()
const b64 = s => Uint8Array.from(atob(s), c => c.charCodeAt(0))
const b64url = s => b64(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4))
const hex = b => Array.from(b, x => x.toString(16).padStart(2, '0')).join('')
const unhex = s => Uint8Array.from(s.match(/../g) || [], x => parseInt(x, 16))
const cat = (...parts) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let i = 0; for (const p of parts) { out.set(p, i); i += p.length } return out }
const sha256 = async b => new Uint8Array(await crypto.subtle.digest('SHA-256', b))
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])
const u32 = b => ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0
const ed25519 = (pub, sig, msg) => crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify'])
  .then(k => crypto.subtle.verify({ name: 'Ed25519' }, k, sig, msg))

async function thumbprint (x) {
  return hex(await sha256(enc.encode(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`)))
}

// checkJWT returns the claims and kid of a receipt whose signature verifies.
async function checkJWT (jwt, jwks) {
  const parts = jwt.trim().split('.')
  if (parts.length !== 3) throw new Error('the receipt is not a compact JWT')
  const header = JSON.parse(new TextDecoder().decode(b64url(parts[0])))
  if (header.alg !== 'EdDSA') throw new Error(`the JWT's alg is ${header.alg}, not EdDSA`)
  let pub = null
  for (const k of jwks.keys || []) {
    if (k.kid !== header.kid || k.kty !== 'OKP' || k.crv !== 'Ed25519') continue
    const want = hex(b64url(k.kid))
    if (await thumbprint(k.x) === want) pub = b64url(k.x)
  }
  if (!pub) throw Object.assign(new Error(`the key set has no Ed25519 key "${header.kid}"`), { kid: header.kid })
  const ok = await ed25519(pub, b64url(parts[2]), enc.encode(parts[0] + '.' + parts[1]))
  if (!ok) throw Object.assign(new Error("the receipt's signature does not verify"), { kid: header.kid })
  return { claims: JSON.parse(new TextDecoder().decode(b64url(parts[1]))), kid: header.kid }
}

// parseKey reads a note verifier key: name+hash+base64(alg ‖ key).
function parseKey (k, alg) {
  const i = k.indexOf('+'), j = k.indexOf('+', i + 1)
  const raw = b64(k.slice(j + 1))
  if (i < 0 || j < 0 || raw[0] !== alg || raw.length !== 33) throw new Error(`not a key of type ${alg}: ${k}`)
  return { name: k.slice(0, i), hash: parseInt(k.slice(i + 1, j), 16) >>> 0, pub: raw.slice(1) }
}

// parsePolicy reads a witness policy (C2SP tlog-policy): its logs, its
// witnesses, groups of them, and the quorum (null: "quorum none").
function parsePolicy (text) {
  const p = { logs: [], witnesses: [], quorum: undefined }
  const named = new Map()
  let quorums = 0
  text.split('\n').forEach((line, i) => {
    const f = line.split(/[ \t]+/).filter(Boolean)
    const bad = m => new Error(`policy line ${i + 1}: ${m}`)
    const fresh = n => { if (named.has(n) || n === 'none') throw bad(`the name ${n} is taken`) }
    if (!f.length || f[0].startsWith('#')) return
    if (f[0] === 'log' && f.length <= 3 && f.length >= 2) {
      p.logs.push(parseKey(f[1], 1))
    } else if (f[0] === 'witness' && f.length <= 4 && f.length >= 3) {
      fresh(f[1])
      const w = { key: parseKey(f[2], 4) }
      p.witnesses.push(w)
      named.set(f[1], w)
    } else if (f[0] === 'group' && f.length >= 4) {
      fresh(f[1])
      const members = f.slice(3).map(m => { if (!named.has(m)) throw bad(`${m} is not defined above`); return named.get(m) })
      if (new Set(members).size !== members.length) throw bad('a member listed twice')
      const k = f[2] === 'all' ? members.length : f[2] === 'any' ? 1 : /^[1-9][0-9]*$/.test(f[2]) ? Number(f[2]) : 0
      if (k < 1 || k > members.length) throw bad(`threshold ${f[2]}`)
      named.set(f[1], { k, members })
    } else if (f[0] === 'quorum' && f.length === 2) {
      if (++quorums > 1) throw bad('a second quorum')
      p.quorum = f[1] === 'none' ? null : named.get(f[1])
      if (p.quorum === undefined) throw bad(`${f[1]} is not defined above`)
    } else {
      throw bad(`cannot read "${line.trim()}"`)
    }
  })
  if (quorums !== 1) throw new Error('policy: no quorum line')
  if (!p.logs.length) throw new Error('policy: no log line')
  return p
}

// satisfied says whether the witnesses that cosigned meet a group.
const satisfied = (g, cosigned) => !g || (g.key ? cosigned.has(g) : g.members.filter(m => satisfied(m, cosigned)).length >= g.k)

// openNote splits a signed note into its text and signatures.
function openNote (note) {
  const at = note.lastIndexOf('\n\n')
  if (at < 0) throw new Error('the checkpoint is not a signed note')
  const text = note.slice(0, at + 1)
  const sigs = note.slice(at + 2).split('\n').filter(Boolean).map(l => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(l)
    if (!m) throw new Error('malformed signature line')
    const raw = b64(m[2])
    return { name: m[1], hash: u32(raw), sig: raw.slice(4) }
  })
  return { text, sigs }
}

async function leafHash (salt, tag, recordHash) {
  const commitment = await sha256(cat(enc.encode('koekje-commitment-v1\0'), salt, recordHash))
  return sha256(cat(new Uint8Array([0]), new Uint8Array([1]), commitment, tag))
}

// rootFromPath follows an RFC 6962 inclusion path (RFC 9162, 2.1.3.2).
async function rootFromPath (index, size, leaf, path) {
  if (index >= size) throw new Error(`leaf ${index} is not in a log of ${size}`)
  let fn = index, sn = size - 1, r = leaf
  for (const p of path) {
    if (sn === 0) throw new Error('the inclusion path is too long')
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(cat(new Uint8Array([1]), p, r))
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2) }
    } else {
      r = await sha256(cat(new Uint8Array([1]), r, p))
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2)
  }
  if (sn !== 0) throw new Error('the inclusion path is too short')
  return r
}

function parseProof (text) {
  const at = text.indexOf('\n\n')
  if (at < 0) throw new Error('tlog-proof: no checkpoint after the proof')
  const lines = text.slice(0, at).split('\n')
  if (lines[0] !== 'c2sp.org/tlog-proof@v1') throw new Error('not a c2sp.org/tlog-proof@v1')
  const p = { path: [], checkpoint: text.slice(at + 2) }
  for (const l of lines.slice(1)) {
    if (l.startsWith('extra ')) { const x = b64(l.slice(6)); p.salt = x.slice(0, 32); p.tag = x.slice(32) } else if (l.startsWith('index ')) p.index = Number(l.slice(6)); else p.path.push(b64(l))
  }
  if (!p.salt || p.tag.length !== 16) throw new Error('tlog-proof: the extra line is not a salt and a site tag')
  return p
}

// checkRecord recomputes the record's hash from the canonical record the
// receipt carries (koekje-record-v1, or v2 with the browser's signals
// after gpc: every field with its length in front, lengths and integers as
// Go's signed varints) and holds the claims against that record, as
// verify-receipt does.
async function checkRecord (claims) {
  const raw = b64url(claims.record)
  if (hex(await sha256(raw)) !== claims.record_hash) throw new Error("the receipt's record does not hash to its record_hash")
  let i = 0
  const varint = () => {
    let x = 0n; let shift = 0n
    for (;;) {
      if (i >= raw.length || shift > 63n) throw new Error('record encoding: bad varint')
      const b = raw[i++]
      x |= BigInt(b & 0x7f) << shift
      shift += 7n
      if (b < 0x80) break
    }
    return (x >> 1n) ^ -(x & 1n)
  }
  const len = () => { const n = Number(varint()); if (n < 0 || n > raw.length - i) throw new Error('record encoding: bad length'); return n }
  const bytes = () => { const n = len(); const b = raw.slice(i, i + n); i += n; return b }
  const str = () => new TextDecoder().decode(bytes())
  const bool = () => { if (i >= raw.length || raw[i] > 1) throw new Error('record encoding: bad bool'); return raw[i++] === 1 }
  const uuid = b => { const h = hex(b); return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` }
  const encoding = str()
  if (encoding !== 'koekje-record-v1' && encoding !== 'koekje-record-v2') throw new Error('record encoding: neither koekje-record-v1 nor koekje-record-v2')
  const v2 = encoding === 'koekje-record-v2'
  const recordID = uuid(bytes()); const consentID = uuid(bytes()); const site = str(); const micros = varint(); const action = str()
  const choices = {}
  for (let n = len(); n > 0; n--) { const k = str(); choices[k] = bool() }
  for (let n = len(); n > 0; n--) str()
  const revision = Number(varint()); const configHash = str()
  str(); str(); str(); str() // language, URL, user agent, network: hashed, not claimed
  const gpc = bool()
  const signals = v2 ? { gpc_header: bool(), adpc: str(), signal: str() } : {}
  const prev = hex(bytes())
  if (i !== raw.length) throw new Error('record encoding: trailing bytes')
  const t = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(claims.recorded_at || '')
  const claimed = t && BigInt(Date.parse(t[1] + t[3])) * 1000n + BigInt((t[2] || '').padEnd(6, '0').slice(0, 6))
  if (recordID !== claims.record_id) throw new Error(`the record is ${recordID}, the receipt says ${claims.record_id}`)
  if (consentID !== claims.sub || site !== claims.site) throw new Error("the record's consent ID or site is not the receipt's")
  if (claimed !== micros) throw new Error(`the record's time is not the receipt's ${claims.recorded_at}`)
  if (action !== claims.action) throw new Error(`the record's action is ${action}, the receipt says ${claims.action}`)
  if (revision !== claims.policy_revision || configHash !== claims.config_hash || gpc !== claims.gpc) throw new Error("the record's policy revision, banner version or GPC is not the receipt's")
  if (prev !== claims.prev_hash) throw new Error("the record's link is not the receipt's prev_hash")
  if ((v2 ? encoding : undefined) !== claims.record_encoding || signals.gpc_header !== claims.gpc_header ||
    (signals.adpc || undefined) !== claims.adpc || signals.signal !== claims.signal) throw new Error("the record's encoding or signals are not the receipt's")
  for (const svc of claims.services || []) {
    for (const p of svc.purposes || []) {
      for (const cat of p.purposeCategory || []) {
        if (Boolean(choices[cat]) !== (p.state === 'granted')) throw new Error(`the receipt says ${p.state} of ${cat}, the record says otherwise`)
      }
    }
  }
}

async function check (f) {
  const out = { ok: false, kid: '' }
  try {
    let jwt = f.receipt.trim()
    if (jwt.startsWith('{')) jwt = JSON.parse(jwt).jwt
    const { claims, kid } = await checkJWT(jwt, JSON.parse(f.jwks))
    Object.assign(out, { kid, consent_id: claims.sub, record_id: claims.record_id, recorded_at: claims.recorded_at, action: claims.action, record_hash: claims.record_hash })
    if (claims.log_index !== undefined) out.log_index = claims.log_index
    out.record_rehashed = false
    if (claims.record) {
      await checkRecord(claims)
      out.record_rehashed = true
    }
    if (f.proof.trim()) {
      const p = parseProof(f.proof.replace(/\r/g, ''))
      if (claims.log_index !== p.index) throw new Error(`the proof is for leaf ${p.index}, not the receipt's`)
      const policy = parsePolicy(f.policy.replace(/\r/g, ''))
      if (policy.quorum === null) out.unwitnessed = true
      const note = openNote(p.checkpoint)
      const [origin, size, root] = note.text.split('\n')
      // Every line under a key of the policy must verify (signed-note);
      // lines under other keys are ignored; a key counts once.
      let logSigned = false
      const witnesses = []
      const cosigned = new Set()
      const seen = new Set()
      for (const s of note.sigs) {
        if (seen.has(s.name + '+' + s.hash)) continue
        const log = policy.logs.find(k => k.name === s.name && k.hash === s.hash)
        const w = policy.witnesses.find(w => w.key.name === s.name && w.key.hash === s.hash)
        if (!log && !w) continue
        seen.add(s.name + '+' + s.hash)
        if (w) {
          const t = s.sig.length === 72 ? s.sig.slice(0, 8).reduce((n, b) => n * 256 + b, 0) : -1
          if (t < 0 || !await ed25519(w.key.pub, s.sig.slice(8), enc.encode(`cosignature/v1\ntime ${t}\n` + note.text))) throw new Error(`checkpoint: invalid signature for key ${s.name}`)
          cosigned.add(w)
          witnesses.push(s.name)
        } else {
          if (!await ed25519(log.pub, s.sig, enc.encode(note.text))) throw new Error(`checkpoint: invalid signature for key ${s.name}`)
          logSigned = logSigned || s.name === origin
        }
      }
      if (!logSigned) throw new Error('checkpoint: not signed by a log of the policy under its origin')
      if (witnesses.length) out.witnesses = witnesses
      if (!satisfied(policy.quorum, cosigned)) throw new Error(`checkpoint ${size} is cosigned by ${witnesses.length} witnesses of the policy, fewer than its quorum asks`)
      Object.assign(out, { log_origin: origin, log_size: Number(size) })
      const leaf = await leafHash(p.salt, p.tag, unhex(claims.record_hash))
      if (!same(await rootFromPath(p.index, Number(size), leaf, p.path), b64(root))) throw new Error(`the record is not in the log at ${p.index}`)
    }
    out.ok = true
  } catch (e) {
    out.error = e.message
    if (e.kid) out.kid = e.kid
  }
  return out
}

// The page's texts in its language; {name} marks a value put in.
const words = JSON.parse(document.getElementById('words').textContent)
const say = (key, values = {}) => words[key].replace(/\{(\w+)\}/g, (_, k) => values[k])

// verdict says in plain words what was checked, one sentence a line.
function verdict (out) {
  if (!out.ok) return [`${words.bad} ${out.error}`]
  const lines = [say('okSig', { kid: out.kid })]
  if (out.record_rehashed) lines.push(say('okRecord'))
  if (out.log_origin === undefined) {
    lines.push(say('noProof'))
    return lines
  }
  lines.push(say('okLog', { index: out.log_index, origin: out.log_origin, size: out.log_size }))
  lines.push(out.unwitnessed ? say('unwitnessed') : say('okWitnesses', { names: (out.witnesses || []).join(', ') }))
  return lines
}

// Opened from a receipt page, the receipt and its proof come in the
// fragment, which no server sees.
const handed = new URLSearchParams(location.hash.slice(1))
for (const id of ['receipt', 'proof']) if (handed.get(id)) document.getElementById(id).value = handed.get(id)

document.getElementById('check').addEventListener('submit', async e => {
  e.preventDefault()
  const f = {}
  for (const id of ['receipt', 'jwks', 'proof', 'policy']) f[id] = document.getElementById(id).value
  const out = await check(f)
  const v = document.getElementById('verdict')
  v.replaceChildren(...verdict(out).map(line => Object.assign(document.createElement('p'), { textContent: line })))
  v.className = out.ok ? 'ok' : 'bad'
  document.getElementById('result').textContent = JSON.stringify(out, null, 2)
  document.body.dataset.checked = '1'
})

// A receipt handed over is checked at once.
if (handed.get('receipt')) document.querySelector('#check button').click()
