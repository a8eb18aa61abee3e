// The chat workload's load (bench/README.md, "chat") over the rooms one worker holds.
//
// Each room has C clients (opened by the worker's connect op on `{room}/chat`). The room's
// posts go out on one timer at C x `rate` posts/s, each from the next client in turn: every
// client posts `rate` messages/s, as in the anchors' chat workload (BENCH-NOTES.md: "every
// client appends a map {from, seq, ts, text} into a Y.Array at 1 msg/s"). A post's text
// carries its per-room sequence number and send time (performance.now(): the posters and
// readers of a room live in this one process, so both ends read one clock).
//
// mode 'api' (collab): HTTP POST /api/v1/rooms/{room}/messages over keep-alive connections;
//   every client of the room, the poster included, sees the message when its id appears in
//   the `chat` doc's `messages` map: C deliveries per post. The answer (201) is timed too.
// mode 'ws' (collab): the same post as a type 101 request on the poster's own chat socket
//   (opened with ?collab=1); its 102 reply is the answer. C deliveries per post.
// mode 'yarray' (the anchors, which have no chat API): the poster appends a Y.Map
//   {from, seq, ts, text} to the Y.Array `chat` of its own copy of the doc; the other C - 1
//   clients see it: C - 1 deliveries per post.
import http from 'node:http'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { cpuSince, loopDelay, sleep } from './clients.mjs'

const MSG_SAVED = 100 // collab: "your update is durable" (never sent on the read-only chat doc)
const MSG_REQUEST = 101 // collab: a chat request, varString(JSON)
const MSG_REPLY = 102 // collab: its reply, varString(JSON)
const FILLER = 'a chat message of about the length people type, sent by the benchmark'
const TEXT_RE = /^bench (\d+) ([0-9.]+) /

const textOf = (seq, t) => `bench ${seq} ${t.toFixed(3)} ${FILLER}`

/** [seq, send time] from a post's text, or null for a message this run did not send. */
const parseText = (text) => {
  const m = typeof text === 'string' ? TEXT_RE.exec(text) : null
  return m ? [Number(m[1]), Number(m[2])] : null
}

/** Lets a y-websocket provider opened with ?collab=1 take collab's own message types. */
const acceptCollabMessages = (client, onReply) => {
  const handlers = client.provider.messageHandlers
  handlers[MSG_SAVED] = () => {}
  handlers[MSG_REPLY] = (_encoder, decoder) => onReply(JSON.parse(decoding.readVarString(decoder)))
}

const requestFrame = (request) => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MSG_REQUEST)
  encoding.writeVarString(encoder, JSON.stringify(request))
  return encoding.toUint8Array(encoder)
}

/** POST with a keep-alive agent; resolves {status, body} (status 0: no answer). */
const httpPoster = ({ api, token, maxSockets }) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets })
  const post = (path, body) => new Promise((resolve) => {
    const data = JSON.stringify(body)
    const req = http.request(`${api}${path}`, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(data),
        authorization: `Bearer ${token}`
      }
    }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', (err) => resolve({ status: 0, body: String(err) }))
    req.end(data)
  })
  return { post, close: () => agent.destroy() }
}

/** Calls `seen(room, seq, now)` for every post this client receives from another. */
const watch = (mode, client, room, seen) => {
  if (mode === 'yarray') {
    const array = client.doc.getArray('chat')
    const observer = (event) => {
      if (event.transaction.local) return // the poster's own append
      const now = performance.now()
      for (const op of event.changes.delta) {
        for (const item of op.insert ?? []) seen(room, item.get('seq'), now)
      }
    }
    array.observe(observer)
    return () => array.unobserve(observer)
  }
  const messages = client.doc.getMap('messages')
  const observer = (event) => {
    const now = performance.now()
    for (const [key, change] of event.changes.keys) {
      if (change.action !== 'add') continue
      const message = messages.get(key)
      const parsed = parseText(message instanceof Y.Map ? message.get('text') : message?.text)
      if (parsed) seen(room, parsed[0], now)
    }
  }
  messages.observe(observer)
  return () => messages.unobserve(observer)
}

/**
 * Whether the server answers type 101 at all (a build without it does not): the first client
 * sends a request with an unknown op, which collab answers with a 102 error and carries out
 * nothing, and waits up to timeoutMs for any 102.
 */
export async function chatProbe (rooms, { timeoutMs = 3000 }) {
  const [client] = rooms.values().next().value ?? []
  if (!client) throw new Error('chat probe: no client')
  let reply = null
  acceptCollabMessages(client, (r) => { reply = r })
  client.provider.ws.send(requestFrame({ op: 'bench-probe', client_id: 'bench-probe' }))
  const start = performance.now()
  while (reply === null && performance.now() - start < timeoutMs) await sleep(10)
  return { answered: reply !== null, reply, cpu: { cores: 0 } }
}

/**
 * Posts for warmupMs + measureMs; only posts sent inside the measured window count. Returns
 * post -> seen latencies (every expected delivery of a counted post; one still missing drainMs
 * after the last post is lost), post -> answer latencies (api, ws), posts, errors and CPU.
 */
export async function chatLoad (rooms, { mode, rate = 1, warmupMs = 1000, measureMs = 3000,
  drainMs = 3000, api = null, token = null, maxSockets = 64 }) {
  if (!['api', 'ws', 'yarray'].includes(mode)) throw new Error(`unknown chat mode ${mode}`)
  const names = [...rooms.keys()]
  const latencies = []
  const answers = []
  const errors = []
  let expected = 0
  let received = 0
  let posted = 0
  let answered = 0
  let inflight = 0
  let windowOpen = false
  const sent = new Map() // `${room}:${seq}` -> {t, counted}
  const seen = (room, seq, now) => {
    const post = sent.get(`${room}:${seq}`)
    if (post?.counted) { latencies.push(now - post.t); received++ }
  }
  const answer = (post, ok, detail) => {
    inflight--
    if (!post.counted) return
    if (ok) { answered++; answers.push(performance.now() - post.t) } else errors.push(detail)
  }
  const offs = []
  const pendingReplies = new Map() // `${room}:${client_id}` -> post (mode ws)
  for (const name of names) {
    for (const client of rooms.get(name)) {
      offs.push(watch(mode, client, name, seen))
      if (mode === 'ws') {
        acceptCollabMessages(client, (reply) => {
          const key = `${name}:${reply.client_id}`
          const post = pendingReplies.get(key)
          if (!post) return
          pendingReplies.delete(key)
          answer(post, !reply.error, JSON.stringify(reply.error))
        })
      }
    }
  }
  const poster = mode === 'api' ? httpPoster({ api, token, maxSockets }) : null

  const postOne = (name, clients, seq) => {
    const t = performance.now()
    const post = { t, counted: windowOpen }
    sent.set(`${name}:${seq}`, post)
    if (post.counted) { posted++; expected += mode === 'yarray' ? clients.length - 1 : clients.length }
    const from = seq % clients.length
    const text = textOf(seq, t)
    const clientId = `${mode}-${seq}`
    if (mode === 'yarray') {
      const message = new Y.Map([['from', from], ['seq', seq], ['ts', t], ['text', text]])
      clients[from].doc.getArray('chat').push([message])
      if (post.counted) answered++
      return
    }
    inflight++
    if (mode === 'ws') {
      pendingReplies.set(`${name}:${clientId}`, post)
      clients[from].provider.ws.send(requestFrame({ op: 'post', client_id: clientId, text }))
      return
    }
    const room = name.split('/')[0]
    poster.post(`/rooms/${encodeURIComponent(room)}/messages`, { text, client_id: clientId })
      .then(({ status, body }) => answer(post, status === 200 || status === 201,
        `${status} ${body.slice(0, 200)}`))
  }

  const timers = []
  const start = performance.now()
  names.forEach((name, i) => {
    const clients = rooms.get(name)
    const intervalMs = 1000 / (clients.length * rate)
    let seq = 0
    const tick = () => postOne(name, clients, ++seq)
    // Rooms are spread evenly over one interval instead of posting together.
    const offset = (i * intervalMs) / names.length
    timers.push(setTimeout(() => { tick(); timers.push(setInterval(tick, intervalMs)) }, offset))
  })
  await sleep(warmupMs)
  const cpuStart = process.cpuUsage()
  const wallStart = performance.now()
  const stopDelay = loopDelay()
  windowOpen = true
  await sleep(measureMs)
  windowOpen = false
  const loop = stopDelay()
  const cpu = cpuSince(cpuStart, wallStart)
  for (const timer of timers) { clearTimeout(timer); clearInterval(timer) }
  const drainStart = performance.now()
  while ((received < expected || inflight > 0) && performance.now() - drainStart < drainMs) {
    await sleep(10)
  }
  for (const off of offs) off()
  poster?.close()
  const round = (xs) => xs.map((x) => Math.round(x * 1000) / 1000)
  return {
    mode,
    rooms: names.length,
    posted,
    answered,
    unanswered: mode === 'yarray' ? 0 : posted - answered - errors.length,
    errors: errors.length,
    first_error: errors[0] ?? null,
    expected,
    received,
    lost: expected - received,
    latencies_ms: round(latencies),
    answers_ms: round(answers),
    elapsed_ms: performance.now() - start,
    loop,
    cpu
  }
}
