// The chat panel: the room's `chat` doc (server-written, synced read-only) rendered in seq
// order, grouped by author and day; posts go through the API with a client id, through the
// IndexedDB outbox, and show their state: sending -> sent, or failed with a retry.
import * as Y from 'yjs'
import { Check, CircleAlert, Clock, RotateCw, SendHorizontal } from 'lucide'
import { api, ApiError, atLeast, type Role } from './api'
import type { DocLink } from './connection'
import { absoluteTime, announce, avatar, clear, h, icon, relativeTime } from './dom'
import { newClientId, outbox, type Pending } from './outbox'

interface Message {
  id: string
  seq: number
  author: { id: string; name: string; handle: string | null }
  created_at: number
  edited_at: number | null
  text: string
  deleted: boolean
  thread: string | null
  reactions: Record<string, string[]>
}

const GROUP_SECONDS = 5 * 60

export class ChatPanel {
  readonly el: HTMLElement
  private list: HTMLElement
  private input: HTMLTextAreaElement
  private sendButton: HTMLButtonElement
  private notice: HTMLElement
  private pending: Pending[] = []
  private confirmed = new Map<string, string>() // client id -> message id, posted this session
  private flushing = false
  private retryTimer = 0
  private frame = 0
  private role: Role

  constructor(
    private room: string,
    private link: DocLink,
    private me: { id: string; name: string },
    role: Role,
  ) {
    this.role = role
    this.list = h('div', { class: 'messages', role: 'log', 'aria-label': 'Messages', tabindex: '0' })
    this.input = h('textarea', {
      class: 'composer-input',
      rows: '1',
      'aria-label': 'Message',
      placeholder: 'Write a message…',
      title: 'Enter sends, Shift+Enter breaks a line',
      onkeydown: (e: Event) => this.onKey(e as KeyboardEvent),
      oninput: () => this.grow(),
    })
    this.sendButton = h('button', { class: 'icon-button primary', type: 'submit', 'aria-label': 'Send' }, icon(SendHorizontal))
    this.notice = h('p', { class: 'composer-notice', hidden: true })
    const form = h(
      'form',
      { class: 'composer', onsubmit: (e: Event) => (e.preventDefault(), this.send()) },
      this.input,
      this.sendButton,
    )
    this.el = h('section', { class: 'chat', 'aria-label': 'Chat' }, this.list, this.notice, form)
    const messages = link.doc.getMap<Y.Map<unknown>>('messages')
    messages.observeDeep(() => this.schedule())
    this.setRole(role)
    void this.loadOutbox()
    link.provider.on('status', ({ status }: { status: string }) => {
      if (status === 'connected') void this.flush()
    })
    window.addEventListener('online', this.onOnline)
  }

  private onOnline = () => void this.flush()

  destroy(): void {
    window.removeEventListener('online', this.onOnline)
    clearTimeout(this.retryTimer)
    cancelAnimationFrame(this.frame)
  }

  setRole(role: Role): void {
    this.role = role
    const canPost = atLeast(role, 'commenter')
    this.input.disabled = !canPost
    this.sendButton.disabled = !canPost
    this.notice.hidden = canPost
    this.notice.textContent = canPost ? '' : `You are a ${role} here: you can read this room but not post.`
    this.el.classList.toggle('read-only', !canPost)
  }

  focus(): void {
    this.input.focus()
  }

  private grow(): void {
    this.input.style.height = 'auto'
    this.input.style.height = Math.min(this.input.scrollHeight, 200) + 'px'
  }

  private onKey(event: KeyboardEvent): void {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault()
      void this.send()
    }
  }

  private async loadOutbox(): Promise<void> {
    this.pending = await outbox.list(this.room)
    this.schedule()
    void this.flush()
  }

  async send(): Promise<void> {
    const text = this.input.value.trim()
    if (!text || this.input.disabled) return
    this.input.value = ''
    this.grow()
    const item: Pending = { client_id: newClientId(), room: this.room, text, thread: null, created: Date.now(), failed: null }
    this.pending.push(item)
    this.render() // at once, as "sending"
    await outbox.put(item)
    void this.flush()
  }

  /** Post what waits, in order, one at a time; stop at the first that cannot go yet. */
  async flush(): Promise<void> {
    if (this.flushing) return
    this.flushing = true
    clearTimeout(this.retryTimer)
    try {
      for (const item of [...this.pending]) {
        if (item.failed !== null || this.confirmed.has(item.client_id)) continue
        try {
          const body: Record<string, unknown> = { text: item.text, client_id: item.client_id }
          if (item.thread) body.thread = item.thread
          const message = await api<Message>('POST', `/rooms/${encodeURIComponent(this.room)}/messages`, body)
          this.confirmed.set(item.client_id, message.id)
          await outbox.remove(item.client_id)
        } catch (err) {
          if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) {
            item.failed = err.message
            await outbox.put(item)
            continue
          }
          // Unreachable, 5xx or 429: keep it (and everything after it) for the next try.
          this.retryTimer = window.setTimeout(() => void this.flush(), 3000)
          break
        }
        this.schedule()
      }
    } finally {
      this.flushing = false
      this.schedule()
    }
  }

  private async retry(item: Pending): Promise<void> {
    item.failed = null
    await outbox.put(item)
    this.schedule()
    void this.flush()
  }

  private schedule(): void {
    cancelAnimationFrame(this.frame)
    this.frame = requestAnimationFrame(() => this.render())
  }

  private messages(): Message[] {
    const found: Message[] = []
    this.link.doc.getMap<Y.Map<unknown>>('messages').forEach((entry) => {
      const message = entry.toJSON() as Message
      if (typeof message.seq === 'number' && !message.thread) found.push(message)
    })
    return found.sort((a, b) => a.seq - b.seq)
  }

  render(): void {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40
    const messages = this.messages()
    const inDoc = new Set(messages.map((m) => m.id))
    const before = this.list.querySelectorAll('.message').length
    const rows: HTMLElement[] = []
    let previous: Message | null = null
    for (const message of messages) {
      const day = new Date(message.created_at * 1000).toDateString()
      if (!previous || new Date(previous.created_at * 1000).toDateString() !== day) {
        rows.push(h('div', { class: 'day-divider', role: 'separator' }, h('span', {}, dayLabel(message.created_at))))
        previous = null
      }
      const grouped =
        previous !== null && previous.author.id === message.author.id && message.created_at - previous.created_at < GROUP_SECONDS
      rows.push(this.row(message, grouped))
      previous = message
    }
    // Mine that the doc does not show yet: sending, failed, or sent (the doc is on its way).
    this.pending = this.pending.filter((p) => {
      const id = this.confirmed.get(p.client_id)
      return !(id && inDoc.has(id))
    })
    let mineBefore = previous?.author.id === this.me.id
    for (const item of this.pending) {
      rows.push(this.pendingRow(item, mineBefore))
      mineBefore = true
    }
    if (rows.length === 0) {
      rows.push(h('div', { class: 'empty' }, h('p', {}, 'No messages yet.'), h('p', { class: 'muted' }, 'Say hello: everyone in this room will see it.')))
    }
    clear(this.list, rows)
    if (atBottom || rows.length !== before) this.list.scrollTop = this.list.scrollHeight
    const last = messages[messages.length - 1]
    if (last && last.author.id !== this.me.id && rows.length > before) announce(`${last.author.name}: ${last.text}`)
  }

  private row(message: Message, grouped: boolean): HTMLElement {
    const mine = message.author.id === this.me.id
    const text = message.deleted
      ? h('p', { class: 'message-text deleted' }, 'This message was deleted.')
      : h('p', { class: 'message-text' }, message.text)
    const reactions = Object.entries(message.reactions ?? {}).filter(([, users]) => users.length > 0)
    return h(
      'article',
      {
        class: `message${grouped ? ' grouped' : ''}${mine ? ' mine' : ''}`,
        'data-id': message.id,
        'data-seq': message.seq,
        'data-state': mine ? 'sent' : null,
      },
      grouped ? h('span', { class: 'gutter' }) : avatar(message.author.id, message.author.name),
      h(
        'div',
        { class: 'message-body' },
        grouped
          ? null
          : h(
              'header',
              { class: 'message-header' },
              h('strong', { class: 'author' }, message.author.name),
              h('time', { title: absoluteTime(message.created_at), datetime: new Date(message.created_at * 1000).toISOString() }, relativeTime(message.created_at)),
            ),
        text,
        message.edited_at && !message.deleted ? h('span', { class: 'edited', title: absoluteTime(message.edited_at) }, '(edited)') : null,
        reactions.length
          ? h('div', { class: 'reactions' }, reactions.map(([emoji, users]) =>
              h('span', { class: `reaction${users.includes(this.me.id) ? ' mine' : ''}`, title: `${users.length}` }, `${emoji} ${users.length}`)))
          : null,
      ),
      mine ? h('span', { class: 'state state-sent', title: 'Sent' }, icon(Check, 'sent')) : null,
    )
  }

  private pendingRow(item: Pending, grouped: boolean): HTMLElement {
    const sent = this.confirmed.has(item.client_id)
    const state = sent ? 'sent' : item.failed !== null ? 'failed' : 'sending'
    const status =
      state === 'failed'
        ? h(
            'span',
            { class: 'state state-failed' },
            icon(CircleAlert),
            ` Failed: ${item.failed} `,
            h('button', { class: 'link-button', type: 'button', onclick: () => void this.retry(item) }, icon(RotateCw), ' Retry'),
          )
        : state === 'sending'
          ? h('span', { class: 'state state-sending' }, icon(Clock), ' Sending…')
          : h('span', { class: 'state state-sent', title: 'Sent' }, icon(Check, 'sent'))
    return h(
      'article',
      { class: `message mine pending ${state}${grouped ? ' grouped' : ''}`, 'data-client-id': item.client_id, 'data-state': state },
      grouped ? h('span', { class: 'gutter' }) : avatar(this.me.id, this.me.name),
      h(
        'div',
        { class: 'message-body' },
        grouped ? null : h('header', { class: 'message-header' }, h('strong', { class: 'author' }, this.me.name)),
        h('p', { class: 'message-text' }, item.text),
      ),
      status,
    )
  }
}

function dayLabel(seconds: number): string {
  const date = new Date(seconds * 1000)
  const today = new Date()
  const yesterday = new Date(Date.now() - 86400000)
  if (date.toDateString() === today.toDateString()) return 'Today'
  if (date.toDateString() === yesterday.toDateString()) return 'Yesterday'
  return date.toLocaleDateString(undefined, { weekday: 'long', month: 'long', day: 'numeric' })
}
