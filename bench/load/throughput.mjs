// The throughput workload's load (bench/README.md, "throughput"): one room of C clients spread
// over several worker processes, every client both writing and reading.
//
// tpStart: each of this process's clients of `room` writes `rate / clients` edits/s (`rate` is
// the room's total), each edit its own transaction and so its own update message, appending
// [writer, seq, sendTime, counted] to the Y.Array `tp`. Every edit has its due time on a fixed
// schedule; a loop ticking every millisecond or so sends every edit due by then, so the offered
// rate is exact over the window. A process that cannot keep up sends its edits late: its send
// lag (send time - due time, p99) is reported, and the runner reads a large one as a saturated
// load generator. Edits due inside the measured window carry counted = 1.
// Every client records, for every counted edit of another client it receives, receive time -
// send time. The writer and the reader may live in different processes: both times are
// performance.timeOrigin + performance.now(), the high-resolution wall clock every process of
// the machine shares (sub-millisecond agreement, against a 100 ms bound).
//
// tpDrain: once the runner knows how many counted edits every process sent, it tells each one
// how many deliveries its clients should get; this waits for them (or drainMs) and returns
// the latencies. A delivery still missing then is lost (the runner counts it as infinite).
import { cpuSince, sleep } from './clients.mjs'

const now = () => performance.timeOrigin + performance.now()
const MAX_PER_TICK = 200 // edits one writer sends in one tick at most (a late tick catches up)

/** Per room: the receiving side, kept between tpStart and tpDrain. */
const receiving = new Map()

/**
 * @param {Map<string, object[]>} rooms this process's clients by room
 * @param {{room: string, rate: number, clients: number, ids: number[], warmupMs: number,
 *          measureMs: number}} args ids: the room-wide index of each local client
 */
export async function tpStart (rooms, { room, rate, clients, ids, warmupMs = 1000, measureMs = 2000 }) {
  const local = rooms.get(room)
  if (!local || local.length !== ids.length) throw new Error(`tpStart: ${room} has ${local?.length} clients, ids ${ids.length}`)
  const state = { latencies: [], received: 0, observers: [] }
  receiving.set(room, state)
  local.forEach((client) => {
    const array = client.doc.getArray('tp')
    const observer = (event) => {
      if (event.transaction.local) return
      const t = now()
      for (const op of event.changes.delta) {
        if (!op.insert) continue
        for (const [, , sentAt, counted] of op.insert) {
          if (counted === 1) {
            state.latencies.push(t - sentAt)
            state.received++
          }
        }
      }
    }
    array.observe(observer)
    state.observers.push(() => array.unobserve(observer))
  })

  // Edit k (from 1) of a writer is due at start + offset + (k - 1) x interval; the writers'
  // offsets spread them over one interval instead of all sending together. An edit is counted
  // when it is due inside the measured window, and goes out at the first tick at or after its
  // due time: its send lag (actual - due) is how far the process fell behind the schedule.
  const interval = 1000 / (rate / clients) // ms between two edits of one client
  const writers = local.map((client, i) => ({
    id: ids[i], array: client.doc.getArray('tp'), offset: (ids[i] / clients) * interval, sent: 0, counted: 0
  }))
  const lags = []
  const start = now() + 20
  const windowStart = start + warmupMs
  const windowEnd = windowStart + measureMs
  const giveUp = windowEnd + measureMs // a process this far behind stops (its lag tells)
  const due = (w, k) => start + w.offset + (k - 1) * interval
  let cpuStart = null
  let wallStart = null
  while (true) {
    const t = now()
    if (cpuStart === null && t >= windowStart) { cpuStart = process.cpuUsage(); wallStart = performance.now() }
    const horizon = Math.min(t, windowEnd) // nothing due at or after the window's end is sent
    let behind = false
    for (const w of writers) {
      for (let k = 0; k < MAX_PER_TICK && due(w, w.sent + 1) <= horizon; k++) {
        const at = due(w, ++w.sent)
        const counted = at >= windowStart ? 1 : 0
        const sentAt = now()
        if (counted) { w.counted++; lags.push(sentAt - at) }
        w.array.push([[w.id, w.sent, sentAt, counted]])
      }
      if (due(w, w.sent + 1) < windowEnd && due(w, w.sent + 1) <= t) behind = true
    }
    if ((t >= windowEnd && !behind) || t >= giveUp) break
    await sleep(1)
  }
  if (cpuStart === null) { cpuStart = process.cpuUsage(); wallStart = performance.now() }
  const cpu = cpuSince(cpuStart, wallStart)
  lags.sort((a, b) => a - b)
  return {
    room,
    counted: writers.map((w) => w.counted),
    counted_total: writers.reduce((a, w) => a + w.counted, 0),
    sent_total: writers.reduce((a, w) => a + w.sent, 0),
    lag_p99_ms: lags.length ? lags[Math.min(lags.length - 1, Math.ceil(0.99 * lags.length) - 1)] : 0,
    lag_max_ms: lags.length ? lags[lags.length - 1] : 0,
    window_s: measureMs / 1000,
    cpu
  }
}

/** Waits until this process's clients got `expected` counted deliveries (or drainMs). */
export async function tpDrain (_rooms, { room, expected, drainMs = 3000 }) {
  const state = receiving.get(room)
  if (!state) throw new Error(`tpDrain: no tpStart for ${room}`)
  const drainStart = performance.now()
  while (state.received < expected && performance.now() - drainStart < drainMs) await sleep(10)
  for (const off of state.observers) off()
  receiving.delete(room)
  return {
    expected,
    received: state.received,
    latencies_ms: state.latencies.map((x) => Math.round(x * 1000) / 1000)
  }
}
