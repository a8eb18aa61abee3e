// Chat writes: through the chat socket (type 101, replies 102) while it is connected, else
// through the HTTP API; the same semantics either way (README, "Chatting over the socket").
// Posts wait in the IndexedDB outbox and go out in order, one at a time, each with its client
// id: the server's idempotency by (author, client id), shared by both doors, makes a retry after
// an unknown outcome (a socket cut before the reply) post it exactly once.
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { api, ApiError, Unreachable } from './api'
import type { DocLink } from './connection'
import { newClientId, outbox, type Pending } from './outbox'

export const MSG_CHAT_REQUEST = 101
export const MSG_CHAT_REPLY = 102
const REPLY_TIMEOUT = 15_000

export type ChatOp =
  | { op: 'post'; text: string; thread?: string | null }
  | { op: 'edit'; id: string; text: string }
  | { op: 'delete'; id: string }
  | { op: 'react' | 'unreact'; id: string; emoji: string }
  | { op: 'read'; up_to: number }

export interface Reply {
  client_id: string
  id?: string
  seq?: number
  up_to?: number
}

const STATUS: Record<string, number> = {
  bad_request: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
}

interface Waiter {
  resolve: (reply: Reply) => void
  reject: (err: Error) => void
  timer: number
}

/** Requests and replies on one chat socket. */
export class ChatWriter {
  private waiting = new Map<string, Waiter>()
  viaSocket = 0 // how many writes went through the socket (tests read it)

  constructor(private room: string, private link: DocLink) {
    link.provider.messageHandlers[MSG_CHAT_REPLY] = (_enc: unknown, decoder: decoding.Decoder) => {
      const reply = JSON.parse(decoding.readVarString(decoder))
      const waiter = this.waiting.get(reply.client_id)
      if (!waiter) return
      this.waiting.delete(reply.client_id)
      clearTimeout(waiter.timer)
      if (reply.error) {
        const { code, message } = reply.error
        waiter.reject(new ApiError(STATUS[code] ?? 400, code, message ?? code))
      } else waiter.resolve(reply as Reply)
    }
    link.provider.on('connection-close', () => this.failAll())
  }

  /** The socket is open and synced: a request sent now is answered on it. */
  get ready(): boolean {
    const ws = this.link.provider.ws
    return ws !== null && ws.readyState === WebSocket.OPEN && this.link.provider.synced
  }

  private failAll(): void {
    for (const [id, waiter] of this.waiting) {
      clearTimeout(waiter.timer)
      waiter.reject(new Unreachable('the chat socket closed before the reply'))
      this.waiting.delete(id)
    }
  }

  /** One write, answered once durable (and already in the chat doc). */
  write(op: ChatOp, clientId: string = newClientId()): Promise<Reply> {
    if (this.ready) return this.overSocket(op, clientId)
    return this.overApi(op, clientId)
  }

  private overSocket(op: ChatOp, clientId: string): Promise<Reply> {
    this.viaSocket += 1
    return new Promise((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.waiting.delete(clientId)
        reject(new Unreachable('no reply from the chat socket'))
      }, REPLY_TIMEOUT)
      this.waiting.set(clientId, { resolve, reject, timer })
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, MSG_CHAT_REQUEST)
      encoding.writeVarString(encoder, JSON.stringify({ ...op, client_id: clientId }))
      this.link.provider.ws!.send(encoding.toUint8Array(encoder))
    })
  }

  private async overApi(op: ChatOp, clientId: string): Promise<Reply> {
    const room = `/rooms/${encodeURIComponent(this.room)}`
    const one = (id: string) => `${room}/messages/${encodeURIComponent(id)}`
    switch (op.op) {
      case 'post': {
        const body: Record<string, unknown> = { text: op.text, client_id: clientId }
        if (op.thread) body.thread = op.thread
        const m = await api<{ id: string; seq: number }>('POST', `${room}/messages`, body)
        return { client_id: clientId, id: m.id, seq: m.seq }
      }
      case 'edit':
        await api('PATCH', one(op.id), { text: op.text })
        return { client_id: clientId, id: op.id }
      case 'delete':
        await api('DELETE', one(op.id))
        return { client_id: clientId, id: op.id }
      case 'react':
      case 'unreact':
        await api(op.op === 'react' ? 'PUT' : 'DELETE', `${one(op.id)}/reactions/${encodeURIComponent(op.emoji)}`)
        return { client_id: clientId, id: op.id }
      case 'read': {
        const r = await api<{ up_to?: number }>('POST', `${room}/read`, { up_to: op.up_to })
        return { client_id: clientId, up_to: r?.up_to }
      }
    }
  }
}

/** The room's outbox: what I posted that the doc does not show yet, and its state. */
export class Poster {
  pending: Pending[] = []
  readonly confirmed = new Map<string, string>() // client id -> message id, posted this session
  private flushing = false
  private flushAgain = false // asked for while a flush ran: run once more (it missed new posts)
  private retryTimer = 0
  private listeners = new Set<() => void>()

  constructor(private room: string, private writer: ChatWriter) {}

  async load(): Promise<void> {
    const stored = await outbox.list(this.room)
    // What was posted while the outbox loaded is kept, after what waited from before (the
    // list may or may not hold it yet): replacing the list lost a post made right after the
    // room opened, shown nowhere and never sent.
    const storedIds = new Set(stored.map((p) => p.client_id))
    this.pending = [...stored, ...this.pending.filter((p) => !storedIds.has(p.client_id))]
    this.changed()
    void this.flush()
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  private changed(): void {
    for (const fn of this.listeners) fn()
  }

  destroy(): void {
    clearTimeout(this.retryTimer)
    this.listeners.clear()
  }

  async post(text: string, thread: string | null): Promise<void> {
    const item: Pending = { client_id: newClientId(), room: this.room, text, thread, created: Date.now(), failed: null }
    this.pending.push(item)
    this.changed() // at once, as "sending"
    await outbox.put(item)
    void this.flush()
  }

  /** Post what waits, in order, one at a time; stop at the first that cannot go yet. */
  async flush(): Promise<void> {
    // A flush asked for while one runs (a post made while the startup flush waits on the
    // network) is not dropped: the running one goes round again, or the new post would wait
    // for the next reconnect.
    if (this.flushing) {
      this.flushAgain = true
      return
    }
    this.flushing = true
    clearTimeout(this.retryTimer)
    try {
      let blocked = false
      do {
        this.flushAgain = false
        blocked = await this.flushOnce()
      } while (this.flushAgain && !blocked)
    } finally {
      this.flushing = false
      this.changed()
    }
  }

  /** One pass over what waits; true when it stopped at one that cannot go yet. */
  private async flushOnce(): Promise<boolean> {
    for (const item of [...this.pending]) {
      if (item.failed !== null || this.confirmed.has(item.client_id)) continue
      try {
        const reply = await this.writer.write({ op: 'post', text: item.text, thread: item.thread }, item.client_id)
        this.confirmed.set(item.client_id, reply.id ?? '')
        await outbox.remove(item.client_id)
      } catch (err) {
        if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) {
          item.failed = err.message
          await outbox.put(item)
          this.changed()
          continue
        }
        // Unreachable, 5xx or 429: keep it (and everything after it) for the next try.
        this.retryTimer = window.setTimeout(() => void this.flush(), 3000)
        return true
      }
      this.changed()
    }
    return false
  }

  async retry(item: Pending): Promise<void> {
    item.failed = null
    await outbox.put(item)
    this.changed()
    void this.flush()
  }

  /** Forget what the doc now shows (its message ids). */
  settle(inDoc: Set<string>): void {
    this.pending = this.pending.filter((p) => {
      const id = this.confirmed.get(p.client_id)
      return !(id && inDoc.has(id))
    })
  }

  state(item: Pending): 'sent' | 'failed' | 'sending' {
    if (this.confirmed.has(item.client_id)) return 'sent'
    return item.failed !== null ? 'failed' : 'sending'
  }
}
