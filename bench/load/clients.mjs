// One benchmark client: a real Yjs client on its own socket, with every received frame counted.
//
// kind 'y-websocket': y-websocket 3.1.0 WebsocketProvider (collab, the relays, y-websocket's
// server, pycrdt-websocket). kind 'hocuspocus': @hocuspocus/provider 4.8.0, which frames every
// message with the document name and authenticates first (a plain y-websocket client never
// syncs with Hocuspocus).
import { PerformanceObserver, constants, monitorEventLoopDelay } from 'node:perf_hooks'
import * as Y from 'yjs'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider } from '@hocuspocus/provider'

const asBuffer = (data) => {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data) // ArrayBuffer: a view, no copy
}

/** A `ws` WebSocket class that reports each received frame to `onFrame(buffer)`. */
const countingSocket = (onFrame) => class CountingWebSocket extends WebSocket {
  constructor (...args) {
    super(...args)
    this.on('message', (data) => onFrame(asBuffer(data)))
  }
}

export class BenchClient {
  /**
   * @param {{kind: string, base: string, name: string, onFrame: (b: Buffer) => void}} opts
   *   base: ws://127.0.0.1:P/ws, name: 'room/doc', params: query of the y-websocket URL
   */
  constructor ({ kind, base, name, onFrame, params = {} }) {
    this.kind = kind
    this.doc = new Y.Doc()
    this.synced = false
    this.connected = false
    const WebSocketPolyfill = countingSocket(onFrame)
    if (kind === 'hocuspocus') {
      this.provider = new HocuspocusProvider({ url: base, name, document: this.doc, WebSocketPolyfill })
      this.provider.on('synced', () => { this.synced = true })
    } else {
      this.provider = new WebsocketProvider(base, name, this.doc, { WebSocketPolyfill, disableBc: true, params })
      this.provider.on('sync', (isSynced) => { if (isSynced) this.synced = true })
    }
    this.provider.on('status', ({ status }) => { this.connected = status === 'connected' })
    this.awareness = this.provider.awareness
  }

  /** The underlying socket, for back-pressure (bufferedAmount). */
  get socket () {
    return this.kind === 'hocuspocus'
      ? this.provider.configuration.websocketProvider.webSocket
      : this.provider.ws
  }

  /** Resolves once synced (or only connected, for relays that never answer a SyncStep1). */
  ready (what, timeoutMs) {
    const done = () => (what === 'synced' ? this.synced : this.connected)
    return waitUntil(done, timeoutMs, `client ${what}`)
  }

  destroy () {
    try { this.provider.destroy() } catch {}
  }
}

/** This process's CPU use since `start` (process.cpuUsage) over the wall time since wallStart. */
export const cpuSince = (start, wallStart) => {
  const used = process.cpuUsage(start)
  const wallMs = performance.now() - wallStart
  return { user_s: used.user / 1e6, system_s: used.system / 1e6, wall_s: wallMs / 1000,
    cores: (used.user + used.system) / 1e3 / wallMs }
}

/**
 * Starts timing this process's event loop: the returned function stops and says the longest
 * stall and the p99 delay (ms). A stall of the load generator delays every delivery it has
 * yet to read: a latency p99 near the stall measured the generator, not the server.
 */
export const loopDelay = () => {
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  // This process's garbage collections meanwhile: the usual cause of a stall (a full one, a
  // mark-compact, holds the loop longest).
  const gc = { count: 0, total_ms: 0, max_ms: 0, major: 0, major_max_ms: 0 }
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++
      gc.total_ms += entry.duration
      gc.max_ms = Math.max(gc.max_ms, entry.duration)
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.major++
        gc.major_max_ms = Math.max(gc.major_max_ms, entry.duration)
      }
    }
  })
  observer.observe({ entryTypes: ['gc'] })
  return () => {
    histogram.disable()
    observer.disconnect()
    return { p99_ms: histogram.percentile(99) / 1e6, max_ms: histogram.max / 1e6, gc }
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Polls `check` every 5 ms until true; rejects after timeoutMs. `what` names the condition in
 * the error: a string, or a function called then (the state at the timeout, not at the start).
 */
export const waitUntil = async (check, timeoutMs, what = 'condition') => {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) {
      throw new Error(`timeout after ${timeoutMs} ms: ${typeof what === 'function' ? what() : what}`)
    }
    await sleep(5)
  }
}
