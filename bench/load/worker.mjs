// One load-generator process, driven by bench/run.py over stdin/stdout (JSON lines).
//
//   node worker.mjs <kind: y-websocket|hocuspocus> <ws base, e.g. ws://127.0.0.1:P/ws> [params]
//
// params: JSON object of query parameters for every socket (collab's dev token).
//
// stdin:  {"id": n, "op": "...", ...}, one command at a time
// stdout: {"id": n, "ok": true, "result": {...}} or {"id": n, "ok": false, "error": "..."}
//
// Ops: connect (clients into rooms), latency, chat and chatprobe (chat.mjs), tpstart and
// tpdrain (throughput.mjs), tpmany and tpdrainmany (the same over several rooms at once, for
// bench/nodes.py), awareness, ingest, fill, coldsync, idle, close, exit. Every op
// reports this process's own CPU use (process.cpuUsage) over its measured phase, so the runner
// can mark points where the load generator, not the server, was the limit.
import { randomBytes } from 'node:crypto'
import * as readline from 'node:readline'
import { BenchClient, cpuSince, loopDelay, sleep, waitUntil } from './clients.mjs'
import { chatLoad, chatProbe } from './chat.mjs'
import { tpDrain, tpStart } from './throughput.mjs'

const [kind, base, paramsJson] = process.argv.slice(2)
const params = paramsJson ? JSON.parse(paramsJson) : {}
if (!kind || !base) {
  process.stderr.write('usage: node worker.mjs <y-websocket|hocuspocus> <ws base>\n')
  process.exit(2)
}

/** room name -> BenchClient[] (index 0 writes, the others read) */
const rooms = new Map()
/** frame observers: called with every frame any client of this process receives */
const frameObservers = new Set()
const onFrame = (buffer) => { for (const observe of frameObservers) observe(buffer) }

const newClient = (room, extraParams = {}) => {
  const client = new BenchClient({ kind, base, name: room, onFrame, params: { ...params, ...extraParams } })
  if (!rooms.has(room)) rooms.set(room, [])
  rooms.get(room).push(client)
  return client
}

// --- ops -----------------------------------------------------------------------------------

/**
 * Opens perRoom clients in each room, batch by batch, each batch awaited. `params`: more query
 * parameters for these clients' sockets (collab's `collab=1` opt-in to its own message types).
 */
async function connect ({ rooms: names, perRoom, wait = 'synced', batch = 50, seed = false,
  timeoutMs = 30000, params: extraParams = {} }) {
  const wallStart = performance.now()
  const cpuStart = process.cpuUsage()
  const pending = []
  for (const room of names) for (let i = 0; i < perRoom; i++) pending.push(room)
  let opened = 0
  for (let i = 0; i < pending.length; i += batch) {
    const clients = pending.slice(i, i + batch).map((room) => newClient(room, extraParams))
    const check = wait === 'synced' ? (c) => c.synced : (c) => c.connected
    // Counted when the wait times out (they once were counted before it: always 0/N).
    await waitUntil(() => clients.every(check), timeoutMs, () =>
      `${clients.filter(check).length}/${clients.length} clients ${wait}, ` +
      `${clients.filter((c) => c.connected).length} connected, ` +
      `${opened} of this process's ${pending.length} opened before this batch`)
    opened += clients.length
  }
  if (seed) {
    // Give every room some content and every client a presence, as a real workspace has.
    for (const room of names) {
      const clients = rooms.get(room)
      clients[0].doc.getText('text').insert(0, `seed text of ${room}`)
      clients.forEach((c, i) => c.awareness?.setLocalStateField('user', { name: `user ${i}` }))
    }
  }
  const result = { opened, ms: performance.now() - wallStart, cpu: cpuSince(cpuStart, wallStart) }
  // Collect what connecting left behind (every socket's handshake and first sync), so that the
  // full collection it would cause sooner or later does not land in the measured window of the
  // op that follows: one there held this process for 12-42 ms (1-2 per window at the chat's
  // 20 x 50), and every delivery behind it waited for the generator, not the server. The same
  // for every workload and server (bench/README.md, "Method"). Needs node --expose-gc.
  globalThis.gc?.()
  return result
}

/**
 * One writer per room (client 0) appends [seq, sendTime] to a Y.Array at `rate` edits/s; every
 * other client of the room records receive time - send time (same process, same clock). Only
 * edits sent inside the measured window count; a delivery still missing `drainMs` after the
 * last edit counts as lost (infinite).
 */
async function latency ({ rate = 10, warmupMs = 1000, measureMs = 3000, drainMs = 3000 }) {
  const latencies = []
  let expected = 0
  let received = 0
  let windowOpen = false
  const sent = new Map() // `${room}:${seq}` -> {t, counted}
  const names = [...rooms.keys()]
  const observers = []
  for (const room of names) {
    const [, ...readers] = rooms.get(room)
    for (const reader of readers) {
      const array = reader.doc.getArray('lat')
      const observer = (event) => {
        const now = performance.now()
        for (const op of event.changes.delta) {
          if (!op.insert) continue
          for (const [seq, t] of op.insert) {
            if (sent.get(`${room}:${seq}`)?.counted) {
              latencies.push(now - t)
              received++
            }
          }
        }
      }
      array.observe(observer)
      observers.push(() => array.unobserve(observer))
    }
  }
  const intervalMs = 1000 / rate
  const timers = []
  const start = performance.now()
  names.forEach((room, i) => {
    const clients = rooms.get(room)
    const array = clients[0].doc.getArray('lat')
    let seq = 0
    const edit = () => {
      seq++
      const t = performance.now()
      sent.set(`${room}:${seq}`, { t, counted: windowOpen })
      if (windowOpen) expected += clients.length - 1
      array.push([[seq, t]])
    }
    // Writers are spread evenly over one interval instead of firing together.
    const offset = (i * intervalMs) / names.length
    timers.push(setTimeout(() => { edit(); timers.push(setInterval(edit, intervalMs)) }, offset))
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
  while (received < expected && performance.now() - drainStart < drainMs) await sleep(10)
  for (const off of observers) off()
  return {
    rooms: names.length,
    expected,
    received,
    lost: expected - received,
    latencies_ms: latencies.map((x) => Math.round(x * 1000) / 1000),
    elapsed_ms: performance.now() - start,
    loop,
    cpu
  }
}

/**
 * `changes` awareness changes, one client after another, `gapMs` apart; counts the frames
 * carrying each change (found by a unique marker in the state) received by all clients of the
 * room. Ideal: clients - 1 per change.
 */
async function awareness ({ changes = 5, gapMs = 300, settleMs = 1000 }) {
  let active = null // {marker: Buffer, frames: number} of the change being counted
  const observe = (buffer) => { if (active && buffer.includes(active.marker)) active.frames++ }
  frameObservers.add(observe)
  const wallStart = performance.now()
  const cpuStart = process.cpuUsage()
  try {
    await sleep(settleMs)
    const perChange = []
    for (const room of rooms.keys()) {
      const clients = rooms.get(room)
      for (let k = 0; k < changes; k++) {
        const marker = `chg-${k}-${Math.random().toString(36).slice(2)}`
        active = { marker: Buffer.from(marker), frames: 0 }
        clients[k % clients.length].awareness.setLocalStateField('bench', marker)
        // Only frames inside this change's gap count: a server that sends every state on each
        // change would otherwise be charged again for older markers.
        await sleep(gapMs)
        perChange.push({ room, clients: clients.length, frames: active.frames })
        active = null
      }
    }
    return { changes: perChange, cpu: cpuSince(cpuStart, wallStart) }
  } finally {
    frameObservers.delete(observe)
  }
}

/**
 * Client 0 of `room` writes n single-character updates (each its own transaction, so its own
 * update message) as fast as the socket takes them; client 1 observes. Ingest time: first send
 * until the observer holds all n characters.
 */
async function ingest ({ room, n, timeoutMs = 120000, maxBuffered = 1 << 22 }) {
  const [writer, observer] = rooms.get(room)
  const text = writer.doc.getText('text')
  const seen = observer.doc.getText('text')
  const cpuStart = process.cpuUsage()
  const wallStart = performance.now()
  for (let i = 0; i < n; i++) {
    text.insert(text.length, 'x')
    if (i % 500 === 499) {
      await new Promise((resolve) => setImmediate(resolve))
      while ((writer.socket?.bufferedAmount ?? 0) > maxBuffered) await sleep(2)
    }
    if (performance.now() - wallStart > timeoutMs) break
  }
  const writtenMs = performance.now() - wallStart
  const remaining = Math.max(1000, timeoutMs - writtenMs)
  let complete = true
  try {
    await waitUntil(() => seen.length >= n, remaining, 'observer content')
  } catch {
    complete = false
  }
  const ms = performance.now() - wallStart
  return { n, written_ms: writtenMs, ingest_ms: ms, complete, observed: seen.length,
    updates_per_s: (seen.length / ms) * 1000, cpu: cpuSince(cpuStart, wallStart) }
}

/** `chars` random lowercase letters (incompressible enough that deflate cannot make it vanish). */
const randomText = (chars) => {
  const bytes = randomBytes(chars)
  for (let i = 0; i < chars; i++) bytes[i] = 97 + (bytes[i] % 26)
  return bytes.toString('latin1')
}

/**
 * Client 0 of `room` writes `bytes` characters of text (random letters, one byte each), each
 * `chunk` characters its own insert and so its own update message, as fast as the socket
 * drains; client 1 observes. Fill time: first send until the observer holds all `bytes`.
 */
async function fill ({ room, bytes, chunk = 250000, timeoutMs = 120000, maxBuffered = 1 << 23 }) {
  const [writer, observer] = rooms.get(room)
  const text = writer.doc.getText('text')
  const seen = observer.doc.getText('text')
  const block = randomText(chunk)
  const cpuStart = process.cpuUsage()
  const wallStart = performance.now()
  for (let written = 0; written < bytes; written += chunk) {
    text.insert(text.length, block.slice(0, Math.min(chunk, bytes - written)))
    await new Promise((resolve) => setImmediate(resolve))
    while ((writer.socket?.bufferedAmount ?? 0) > maxBuffered) await sleep(2)
    if (performance.now() - wallStart > timeoutMs) break
  }
  const writtenMs = performance.now() - wallStart
  let complete = true
  try {
    await waitUntil(() => seen.length >= bytes, Math.max(1000, timeoutMs - writtenMs), 'observer content')
  } catch {
    complete = false
  }
  const ms = performance.now() - wallStart
  return { bytes, written_ms: writtenMs, fill_ms: ms, complete, observed: seen.length,
    mb_per_s: seen.length / 1e6 / (ms / 1000), cpu: cpuSince(cpuStart, wallStart) }
}

/** Does nothing for `ms`; reports this process's CPU meanwhile (its idle clients' upkeep). */
async function idle ({ ms = 1000 }) {
  const cpuStart = process.cpuUsage()
  const wallStart = performance.now()
  await sleep(ms)
  return { cpu: cpuSince(cpuStart, wallStart) }
}

/**
 * A fresh client joins `room` (after the server restarted): time to its sync event and to the
 * full n characters; the persisted share is what arrived once the content stopped changing.
 */
async function coldsync ({ room, n, timeoutMs = 10000, stableMs = 2000 }) {
  const wallStart = performance.now()
  const cpuStart = process.cpuUsage()
  const client = newClient(room)
  const text = client.doc.getText('text')
  let syncedMs = null
  let fullMs = null
  let lastLength = -1
  let lastChange = performance.now()
  while (performance.now() - wallStart < timeoutMs) {
    const now = performance.now()
    if (syncedMs === null && client.synced) syncedMs = now - wallStart
    if (text.length !== lastLength) { lastLength = text.length; lastChange = now }
    if (fullMs === null && text.length >= n) { fullMs = now - wallStart; break }
    if (syncedMs !== null && now - lastChange > stableMs) break
    await sleep(1)
  }
  return { n, synced_ms: syncedMs, full_ms: fullMs, length: text.length,
    persisted: text.length / n, cpu: cpuSince(cpuStart, wallStart) }
}

async function close () {
  for (const clients of rooms.values()) for (const c of clients) c.destroy()
  const count = [...rooms.values()].reduce((a, cs) => a + cs.length, 0)
  rooms.clear()
  return { closed: count }
}

/** The chat workload (chat.mjs) over this process's rooms. */
const chat = (args) => chatLoad(rooms, args)
const chatprobe = (args) => chatProbe(rooms, args)
/** The throughput workload (throughput.mjs) over this process's clients of one room. */
const tpstart = (args) => tpStart(rooms, args)
const tpdrain = (args) => tpDrain(rooms, args)
/** tpstart over several rooms at once: `shares` is [{room, ids}], the other args shared. */
const tpmany = async ({ shares, ...args }) =>
  ({ results: await Promise.all(shares.map(({ room, ids }) => tpStart(rooms, { ...args, room, ids }))) })
/** tpdrain of each room of tpmany: `drains` is [{room, expected}]. */
const tpdrainmany = async ({ drains, drainMs }) =>
  ({ results: await Promise.all(drains.map((d) => tpDrain(rooms, { ...d, drainMs }))) })

const ops = { connect, latency, chat, chatprobe, tpstart, tpdrain, tpmany, tpdrainmany, awareness,
  ingest, fill, coldsync, idle, close }

// --- command loop --------------------------------------------------------------------------

const reply = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const lines = readline.createInterface({ input: process.stdin })
let queue = Promise.resolve()
lines.on('line', (line) => {
  if (!line.trim()) return
  const { id, op, ...args } = JSON.parse(line)
  if (op === 'exit') {
    close().finally(() => process.exit(0))
    return
  }
  queue = queue.then(async () => {
    try {
      if (!ops[op]) throw new Error(`unknown op ${op}`)
      reply({ id, ok: true, result: await ops[op](args) })
    } catch (err) {
      reply({ id, ok: false, error: String(err && err.stack ? err.stack : err) })
    }
  })
})
lines.on('close', () => { close().finally(() => process.exit(0)) })
reply({ event: 'ready', kind, base, pid: process.pid })
