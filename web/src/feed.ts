// The user's live stream (`/ws/_me`): my rooms and DMs with their unread and mention counts
// and who is in each (and on which docs), so the sidebar needs no socket per room. It
// reconnects with a backoff; 4401/4403 are final (signed out: the page's own sockets say so).
import { wsBase } from './connection'
import { userParam, type Role } from './api'

export interface Here {
  id: string
  name: string
  docs: string[]
}

export interface FeedRoom {
  id: string
  title: string
  kind: 'room' | 'dm'
  role: Role
  unread: number
  mentions: number
  here: Here[]
  peer?: { id: string; name: string; handle: string | null } | null
}

export interface FeedListener {
  rooms(rooms: FeedRoom[], dms: FeedRoom[]): void
  room(change: Pick<FeedRoom, 'id' | 'unread' | 'mentions' | 'here'>): void
}

export class Feed {
  private ws: WebSocket | null = null
  private attempts = 0
  private timer = 0
  private stopped = false
  connected = false

  constructor(private listener: FeedListener) {
    this.connect()
    window.addEventListener('online', this.onOnline)
  }

  private onOnline = () => {
    if (this.ws === null && !this.stopped) {
      clearTimeout(this.timer)
      this.connect()
    }
  }

  private connect(): void {
    const ws = new WebSocket(wsBase() + '/_me?' + new URLSearchParams(userParam()))
    this.ws = ws
    ws.onopen = () => {
      this.attempts = 0
      this.connected = true
    }
    ws.onmessage = (event) => {
      const frame = JSON.parse(String(event.data))
      if (frame.type === 'rooms') this.listener.rooms(frame.rooms, frame.dms)
      else if (frame.type === 'room') this.listener.room(frame.room)
    }
    ws.onclose = (event) => {
      this.ws = null
      this.connected = false
      if (this.stopped || event.code === 4401 || event.code === 4403) return
      const delay = Math.min(1000 * 2 ** this.attempts++, 30_000)
      this.timer = window.setTimeout(() => this.connect(), delay)
    }
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    window.removeEventListener('online', this.onOnline)
    this.ws?.close()
  }
}
