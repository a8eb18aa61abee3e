// One collab socket per open doc: y-websocket with collab's own messages (README):
// 100 "saved" (the echo after everything sent before it is on disk), 103 "access changed"
// (my role in the room changed: the editor or composer follows at once), ?gen= and a reload on
// 4409, and a status with the retry countdown for the connection banner.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { userParam, type Role } from './api'

export const MSG_SAVED = 100
export const MSG_ACCESS = 103

export type LinkState =
  | { kind: 'connecting' }
  | { kind: 'connected' }
  | { kind: 'retrying'; at: number } // Date.now() of the next attempt
  | { kind: 'closed'; code: number; reason: string }

export interface Access {
  role: Role
  write: boolean
}

export function wsBase(): string {
  const url = new URL('ws', document.baseURI)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  return url.toString()
}

export class DocLink {
  readonly doc = new Y.Doc()
  readonly provider: WebsocketProvider
  state: LinkState = { kind: 'connecting' }
  sent = 0
  saved = 0
  private listeners = new Set<() => void>()
  onAccess: (access: Access) => void = () => {}

  constructor(readonly room: string, readonly name: string, generation: string | null) {
    const params: Record<string, string> = { collab: '1', ...userParam() }
    if (generation) params.gen = generation
    this.provider = new WebsocketProvider(wsBase(), `${room}/${name}`, this.doc, {
      params,
      disableBc: true, // two tabs must not sync behind the server's back (and its checks)
      maxBackoffTime: 8000,
    })
    this.provider.messageHandlers[MSG_SAVED] = (_enc: unknown, decoder: decoding.Decoder) => {
      this.saved = decoding.readVarUint(decoder)
      this.changed()
    }
    this.provider.messageHandlers[MSG_ACCESS] = (_enc: unknown, decoder: decoding.Decoder) => {
      const access = JSON.parse(decoding.readVarString(decoder)) as Access
      this.onAccess(access)
    }
    this.doc.on('update', (_update: Uint8Array, origin: unknown) => {
      if (origin === this.provider) return // remote changes are not ours to save
      this.requestSaved()
    })
    this.provider.on('status', ({ status }: { status: string }) => {
      if (status === 'connected') {
        this.state = { kind: 'connected' }
      } else if (status === 'connecting' && this.state.kind !== 'retrying') {
        this.state = { kind: 'connecting' }
      }
      this.changed()
    })
    this.provider.on('sync', (synced: boolean) => {
      // Our reply to the server's SyncStep1 (what we wrote while away) went out before this:
      // ask again, so "saved" covers it.
      if (synced && this.sent > this.saved) this.requestSaved()
    })
    this.provider.on('connection-close', (event: CloseEvent | null) => {
      if (event?.code === 4409) {
        location.reload() // the doc was deleted, re-created or restored: never write old state back
        return
      }
      if (event && event.code >= 4400 && event.code < 4500) {
        this.state = { kind: 'closed', code: event.code, reason: event.reason }
      } else {
        // y-websocket's own backoff (it counted this close already): 2^n * 100 ms, capped.
        const n = this.provider.wsUnsuccessfulReconnects + 1
        const delay = Math.min(2 ** n * 100, this.provider.maxBackoffTime)
        this.state = { kind: 'retrying', at: Date.now() + delay }
      }
      this.changed()
    })
  }

  get isSaved(): boolean {
    return this.saved >= this.sent
  }

  private requestSaved(): void {
    const ws = this.provider.ws
    this.sent += 1
    if (ws && ws.readyState === WebSocket.OPEN) {
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, MSG_SAVED)
      encoding.writeVarUint(encoder, this.sent)
      ws.send(encoding.toUint8Array(encoder)) // after y-websocket sent the update itself
    }
    this.changed()
  }

  /** Try now instead of waiting for the backoff (the banner's "retry now"). */
  retryNow(): void {
    if (this.provider.ws === null && this.provider.shouldConnect) {
      this.provider.disconnect()
      this.provider.connect()
    }
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  private changed(): void {
    for (const fn of this.listeners) fn()
  }

  destroy(): void {
    this.listeners.clear()
    this.provider.destroy()
    this.doc.destroy()
  }
}
