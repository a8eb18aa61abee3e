// A y-websocket peer scripted over stdin/stdout with JSON lines (driven by tests/support/jspeer.py).
//
//   node peer.mjs <ws base, e.g. ws://127.0.0.1:8000/ws> <room/doc> [params as JSON]
//
// stdin:  one command per line, {"id": n, "op": "...", ...}; commands run concurrently.
// stdout: one line per command, {"id": n, "ok": true, ...} or {"id": n, "ok": false,
//         "error": "..."}, and events {"event": "status" | "synced" | "close" | "closed" |
//         "permission-denied" | "ready", ...}. Library warnings go to stderr.
//
// With params {"collab": "1"} the peer is a collab-aware app: it registers a handler for chat
// replies (type 102) and may send chat requests (type 101, op "chat_request"). Without, it is a
// standard y-websocket client, which logs "Unable to compute message" for any type it lacks.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as authProtocol from 'y-protocols/auth'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import * as readline from 'node:readline'
import { createHash } from 'node:crypto'

const [base, roomname, paramsJson] = process.argv.slice(2)
if (!base || !roomname) {
  process.stderr.write('usage: node peer.mjs <ws base> <room/doc> [params JSON]\n')
  process.exit(2)
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const ydoc = new Y.Doc()
const ytext = ydoc.getText('text')
// connect: false so that the first 'connecting' status is seen by our listener too.
const provider = new WebsocketProvider(base, roomname, ydoc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
  connect: false,
  params: paramsJson ? JSON.parse(paramsJson) : {}
})
const awareness = provider.awareness

let attempts = 0
const closes = []
let permissionDenied = null

provider.on('status', ({ status }) => {
  if (status === 'connecting') attempts++
  out({ event: 'status', status, attempts })
})
provider.on('sync', (synced) => { if (synced) out({ event: 'synced' }) })
provider.on('connection-close', (event) => {
  const close = { code: event ? event.code : null, reason: event ? String(event.reason) : '' }
  closes.push(close)
  out({ event: 'close', ...close })
})
provider.on('closed', ({ code, reason }) => out({ event: 'closed', code, reason: String(reason) }))
provider.messageHandlers[2] = (_enc, decoder, prov) => {
  authProtocol.readAuthMessage(decoder, prov.doc, (_doc, reason) => {
    permissionDenied = reason
    out({ event: 'permission-denied', reason })
  })
}

// collab's chat requests and replies: varUint(type) + varString(JSON), lib0 encoding.
const CHAT_REQUEST = 101
const CHAT_REPLY = 102
const chatReplies = []
if (provider.params.collab === '1') {
  provider.messageHandlers[CHAT_REPLY] = (_enc, decoder) => {
    chatReplies.push(JSON.parse(decoding.readVarString(decoder)))
    notify()
  }
}

// Resolves once check() is true, re-checked on every doc / awareness / status change.
const waiters = new Set()
const notify = () => { for (const w of [...waiters]) w() }
ydoc.on('update', notify)
awareness.on('change', notify)
provider.on('status', notify)

const waitFor = (check, timeoutMs, describe) => new Promise((resolve, reject) => {
  if (check()) return resolve()
  const waiter = () => { if (check()) { done(); resolve() } }
  const timer = setTimeout(() => { done(); reject(new Error(`timeout: ${describe()}`)) }, timeoutMs)
  const done = () => { clearTimeout(timer); waiters.delete(waiter) }
  waiters.add(waiter)
})

const statesObject = () => {
  const states = {}
  for (const [client, state] of awareness.getStates()) states[client] = state
  return states
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Boundaries between tokens ("tag.n;") in the text: 0 and every index after a ';'.
const boundaries = () => {
  const s = ytext.toString()
  const result = [0]
  for (let i = 0; i < s.length; i++) if (s[i] === ';') result.push(i + 1)
  return result
}

// A small deterministic PRNG (mulberry32): runs are reproducible from their seed.
const prng = (seed) => () => {
  seed = (seed + 0x6D2B79F5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const ops = {
  info: () => ({ clientID: ydoc.clientID, attempts, closes, synced: provider.synced, permissionDenied, url: provider.url, extensions: provider.ws?.extensions ?? null }),
  insert: ({ index, text }) => {
    ytext.insert(Math.min(index ?? ytext.length, ytext.length), text)
    return { length: ytext.length }
  },
  delete: ({ index, length }) => {
    ytext.delete(index, length)
    return { length: ytext.length }
  },
  text: () => ({ text: ytext.toString() }),
  // A root Y.Map as JSON (the chat doc: `messages`, `reads`, `info`), once it has `size` keys.
  map: async ({ name, size, timeout_ms: timeoutMs = 5000 }) => {
    const map = ydoc.getMap(name)
    await waitFor(() => size === undefined || map.size === size, timeoutMs, () => `${name} has ${map.size} keys`)
    return { value: map.toJSON() }
  },
  // `count` tokens "<tag>.<i>;", each at a random token boundary, `every_ms` apart.
  burst: async ({ tag, count, every_ms: everyMs = 1, seed = 1 }) => {
    const random = prng(seed)
    for (let i = 0; i < count; i++) {
      const at = boundaries()
      ytext.insert(at[Math.floor(random() * at.length)], `${tag}.${i};`)
      await sleep(everyMs)
    }
    return { length: ytext.length }
  },
  wait_text: async ({ equals, length, contains, timeout_ms: timeoutMs = 5000 }) => {
    await waitFor(() => {
      const s = ytext.toString()
      return (equals === undefined || s === equals) &&
        (length === undefined || s.length === length) &&
        (contains === undefined || s.includes(contains))
    }, timeoutMs, () => `text is ${JSON.stringify(ytext.toString().slice(0, 200))} (length ${ytext.length})`)
    return { text: ytext.toString() }
  },
  // The text's length and SHA-256, once it has `length` (or `at_least` that many): a large
  // doc's text would not fit one JSON line back to the driver.
  digest: async ({ length, at_least: atLeast = 0, timeout_ms: timeoutMs = 5000 }) => {
    await waitFor(
      () => ytext.length >= atLeast && (length === undefined || ytext.length === length),
      timeoutMs,
      () => `length is ${ytext.length}`
    )
    return { length: ytext.length, sha256: createHash('sha256').update(ytext.toString()).digest('hex') }
  },
  wait_synced: async ({ timeout_ms: timeoutMs = 5000 }) => {
    await waitFor(() => provider.synced, timeoutMs, () => 'not synced')
    return {}
  },
  awareness: ({ state }) => {
    awareness.setLocalState(state)
    return {}
  },
  states: () => ({ states: statesObject() }),
  // Waits until every client in `has` is present (with `state` if given) and none in `lacks`.
  wait_states: async ({ has = [], lacks = [], state, timeout_ms: timeoutMs = 5000 }) => {
    const states = awareness.getStates()
    await waitFor(
      () => has.every((c) => states.has(c) && (state === undefined || JSON.stringify(states.get(c)) === JSON.stringify(state))) &&
        lacks.every((c) => !states.has(c)),
      timeoutMs,
      () => `states are ${JSON.stringify(statesObject())}`
    )
    return { states: statesObject() }
  },
  // Send one chat request (type 101) on the open socket.
  chat_request: ({ request }) => {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, CHAT_REQUEST)
    encoding.writeVarString(encoder, JSON.stringify(request))
    provider.ws.send(encoding.toUint8Array(encoder))
    return {}
  },
  // The chat replies (type 102) received so far, once there are `count` of them.
  chat_replies: async ({ count = 0, timeout_ms: timeoutMs = 5000 }) => {
    await waitFor(() => chatReplies.length >= count, timeoutMs, () => `${chatReplies.length} replies`)
    return { replies: chatReplies }
  },
  // What an app does before its token expires: the next reconnect uses the new params.
  set_params: ({ params }) => { provider.params = params; return {} },
  disconnect: () => { provider.disconnect(); return {} },
  connect: () => { provider.connect(); return {} },
  exit: () => {
    provider.destroy()
    setTimeout(() => process.exit(0), 0)
    return {}
  }
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  if (!line.trim()) return
  let command
  try {
    command = JSON.parse(line)
  } catch (err) {
    out({ id: null, ok: false, error: `bad JSON: ${err.message}` })
    return
  }
  const { id, op } = command
  try {
    if (!Object.hasOwn(ops, op)) throw new Error(`unknown op ${JSON.stringify(op)}`)
    out({ id, ok: true, ...(await ops[op](command)) })
  } catch (err) {
    out({ id, ok: false, error: err.message })
  }
})
// The driver went away: leave like a closing tab would (awareness removal, socket close).
rl.on('close', () => { provider.destroy(); process.exit(0) })

out({ event: 'ready', clientID: ydoc.clientID })
provider.connect()
