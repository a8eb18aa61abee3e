// A chat view: the room's channel, or one thread (its parent and replies) in the side panel.
// Both render the server-written `chat` doc in seq order, grouped by author and day, with my
// outbox's messages (sending -> sent, or failed with a retry) after them. The channel also pages
// back through the archive when scrolled past the doc's oldest message, moves my read marker
// when I see the latest, and shows who has seen it.
import { ArrowDown, X } from 'lucide'
import { api, ApiError, atLeast, type Role } from './api'
import { archivedThrough, dayLabel, docMessage, docMessages, lastSeq, readMarkers, sameDay, type Member, type Message } from './chat-model'
import { editBox, messageRow, pendingRow, type RowContext } from './chat-row'
import type { ChatWriter, Poster } from './chat-send'
import { Composer, typingLine } from './composer'
import type { DocLink } from './connection'
import { formDialog } from './dialog'
import { announce, clear, h, icon } from './dom'

const GROUP_SECONDS = 5 * 60
const PAGE = 50

export interface ChatDeps {
  room: string
  link: DocLink
  writer: ChatWriter
  poster: Poster
  me: { id: string; name: string; handle: string | null }
  members: () => Member[]
  openThread: (message: Message) => void
}

export class ChatView {
  readonly el: HTMLElement
  private list = h('div', { class: 'messages', role: 'log', 'aria-label': 'Messages', tabindex: '0' })
  private composer: Composer
  private typing = h('div', { class: 'typing', 'aria-live': 'polite' })
  private notice = h('p', { class: 'composer-notice', hidden: true })
  private error = h('p', { class: 'chat-error', role: 'alert', hidden: true })
  private jump: HTMLButtonElement
  private older: Message[] = [] // from the archive (seq <= archived_through), oldest first
  private olderDone = false
  private loadingOlder = false
  private editing: { id: string; box: HTMLElement } | null = null
  private readSent = 0
  private readTimer = 0
  private newAfter: number | null | undefined = undefined // my marker when the room opened
  private readPending = 0 // a marker waiting for its debounce (sent at once on leaving)
  private frame = 0
  private rendered = 0
  private unsubscribe: () => void
  private role: Role = 'viewer'
  private rootDeleted = false // a thread whose first message was deleted takes no new reply

  constructor(private deps: ChatDeps, role: Role, readonly thread: string | null = null, onClose?: () => void) {
    const awareness = deps.link.provider.awareness
    this.composer = new Composer({
      label: thread ? 'Reply' : 'Message',
      placeholder: thread ? 'Reply in thread…' : 'Write a message…',
      thread,
      awareness,
      members: deps.members,
      onSend: (text) => void deps.poster.post(text, thread),
      onEditLast: () => this.editLast(),
      onEscape: onClose,
    })
    this.jump = h('button', { class: 'jump-latest button', type: 'button', hidden: true, onclick: () => this.toBottom() }, icon(ArrowDown), ' Jump to latest')
    const head = thread
      ? h('header', { class: 'thread-header' }, h('h2', {}, 'Thread'), h('button', { class: 'icon-button', type: 'button', 'aria-label': 'Close the thread', title: 'Close (Esc)', onclick: () => onClose?.() }, icon(X)))
      : null
    this.el = h(
      'section',
      { class: thread ? 'chat thread' : 'chat', 'aria-label': thread ? 'Thread' : 'Chat', 'data-thread': thread },
      head,
      h('div', { class: 'messages-wrap' }, this.list, this.jump),
      this.error,
      this.typing,
      this.notice,
      this.composer.el,
    )
    if (thread) this.el.addEventListener('keydown', (e) => e.key === 'Escape' && !e.defaultPrevented && onClose?.())
    this.list.addEventListener('scroll', () => this.onScroll())
    const messages = deps.link.doc.getMap('messages')
    const onDoc = () => this.schedule()
    messages.observeDeep(onDoc)
    deps.link.doc.getMap('reads').observe(onDoc)
    const onAwareness = () => this.renderTyping()
    awareness.on('change', onAwareness)
    const offPoster = deps.poster.subscribe(onDoc)
    window.addEventListener('focus', this.onFocus)
    document.addEventListener('visibilitychange', this.onFocus)
    this.unsubscribe = () => {
      messages.unobserveDeep(onDoc)
      deps.link.doc.getMap('reads').unobserve(onDoc)
      awareness.off('change', onAwareness)
      offPoster()
      window.removeEventListener('focus', this.onFocus)
      document.removeEventListener('visibilitychange', this.onFocus)
    }
    this.setRole(role)
    if (thread) void this.loadReplies()
    else void this.loadMarker()
    this.schedule()
  }

  private onFocus = () => this.markRead()

  destroy(): void {
    this.unsubscribe()
    this.composer.destroy()
    clearTimeout(this.readTimer)
    if (this.readPending) this.sendRead() // leaving the room right after reading it
    cancelAnimationFrame(this.frame)
  }

  setRole(role: Role): void {
    this.role = role
    this.updatePosting()
    this.schedule()
  }

  private updatePosting(): void {
    const canPost = atLeast(this.role, 'commenter') && !this.rootDeleted
    this.composer.disabled = !canPost
    this.notice.hidden = canPost
    this.notice.textContent = canPost
      ? ''
      : this.rootDeleted
        ? 'This thread’s first message was deleted. Its replies stay, but no new replies can be added.'
        : `You are a ${this.role} here: you can read this room but not post.`
    this.el.classList.toggle('read-only', !canPost)
  }

  focus(): void {
    this.composer.focus()
  }

  private schedule(): void {
    cancelAnimationFrame(this.frame)
    this.frame = requestAnimationFrame(() => this.render())
  }

  private visible(): Message[] {
    const doc = this.deps.link.doc
    const inDoc = docMessages(doc)
    if (this.thread) {
      const parent = docMessage(doc, this.thread) ?? this.older.find((m) => m.id === this.thread) ?? null
      const replies = new Map(this.older.filter((m) => m.thread === this.thread).map((m) => [m.id, m]))
      for (const m of inDoc) if (m.thread === this.thread) replies.set(m.id, m)
      return [...(parent ? [parent] : []), ...[...replies.values()].sort((a, b) => a.seq - b.seq)]
    }
    const ids = new Set(inDoc.map((m) => m.id))
    return [...this.older.filter((m) => !ids.has(m.id)), ...inDoc].filter((m) => m.thread === null)
  }

  private context(): RowContext {
    const names = new Map(this.deps.members().map((m) => [m.user_id, m.name || m.handle || m.user_id]))
    return {
      me: this.deps.me,
      role: this.role,
      inThread: this.thread !== null,
      react: (m, emoji, add) => this.write({ op: add ? 'react' : 'unreact', id: m.id, emoji }),
      reply: (m) => this.deps.openThread(m),
      edit: (m) => this.startEdit(m),
      remove: (m) => this.remove(m),
      names: (id) => names.get(id) ?? (id === this.deps.me.id ? this.deps.me.name : 'someone'),
    }
  }

  render(): void {
    const list = this.list
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40
    const focused = this.editing && this.editing.box.contains(document.activeElement)
    const messages = this.visible()
    const rootDeleted = this.thread !== null && messages[0]?.id === this.thread && messages[0].deleted
    if (rootDeleted !== this.rootDeleted) {
      this.rootDeleted = rootDeleted
      this.updatePosting()
    }
    const ctx = this.context()
    const seen = this.seenBy(messages[messages.length - 1], ctx)
    const rows: HTMLElement[] = []
    if (!this.thread && this.olderDone && messages.length) rows.push(h('div', { class: 'history-start muted' }, 'This is the start of the room’s history.'))
    const firstNew = this.thread || this.newAfter == null ? undefined : messages.find((m) => m.seq > this.newAfter! && m.author.id !== this.deps.me.id)
    let previous: Message | null = null
    for (const message of messages) {
      if (!previous || !sameDay(previous.created_at, message.created_at)) {
        rows.push(h('div', { class: 'day-divider', role: 'separator' }, h('span', {}, dayLabel(message.created_at))))
        previous = null
      }
      if (message === firstNew) {
        rows.push(h('div', { class: 'new-divider', role: 'separator', 'aria-label': 'New messages' }, h('span', {}, 'New')))
        previous = null // the first new message shows its header
      }
      const grouped = previous !== null && previous.author.id === message.author.id && message.created_at - previous.created_at < GROUP_SECONDS && !previous.deleted
      const row = messageRow(message, grouped, ctx, message === messages[messages.length - 1] ? seen : [])
      if (this.editing?.id === message.id) row.querySelector('.message-text')?.replaceWith(this.editing.box)
      rows.push(row)
      if (this.thread && message.id === this.thread) rows.push(h('div', { class: 'thread-divider muted' }, `${messages.length - 1} ${messages.length === 2 ? 'reply' : 'replies'}`))
      previous = message
    }
    const poster = this.deps.poster
    poster.settle(new Set(docMessages(this.deps.link.doc).map((m) => m.id)))
    let mineBefore = previous?.author.id === this.deps.me.id
    for (const item of poster.pending.filter((p) => p.thread === this.thread)) {
      rows.push(pendingRow(item, poster.state(item), mineBefore, this.deps.me, () => void poster.retry(item)))
      mineBefore = true
    }
    if (rows.length === 0) rows.push(this.empty())
    const count = rows.length
    clear(list, rows)
    if (focused) (this.editing!.box.querySelector('textarea') as HTMLTextAreaElement).focus()
    if ((atBottom || count > this.rendered) && !this.loadingOlder) list.scrollTop = list.scrollHeight
    const last = messages[messages.length - 1]
    if (last && last.author.id !== this.deps.me.id && count > this.rendered && this.rendered > 0) announce(`${last.author.name}: ${last.text}`)
    this.rendered = count
    this.jump.hidden = list.scrollHeight - list.scrollTop - list.clientHeight < 80
    this.markRead()
    if (!this.thread && list.scrollHeight <= list.clientHeight + 4) void this.loadOlder() // nothing to scroll yet
  }

  private empty(): HTMLElement {
    if (this.thread) return h('div', { class: 'empty' }, h('p', { class: 'muted' }, 'This message is no longer here.'))
    return h('div', { class: 'empty' }, h('p', {}, 'No messages yet.'), h('p', { class: 'muted' }, 'Say hello: everyone in this room will see it.'))
  }

  private seenBy(last: Message | undefined, ctx: RowContext): string[] {
    if (!last || this.thread) return []
    const seen: string[] = []
    readMarkers(this.deps.link.doc).forEach((seq, user) => {
      if (seq >= last.seq && user !== last.author.id && user !== this.deps.me.id) seen.push(ctx.names(user))
    })
    return seen
  }

  private renderTyping(): void {
    const line = typingLine(this.deps.link.provider.awareness, this.deps.me.id, this.thread)
    if (this.typing.textContent !== line) this.typing.textContent = line
  }

  private toBottom(): void {
    this.list.scrollTop = this.list.scrollHeight
  }

  private onScroll(): void {
    const list = this.list
    this.jump.hidden = list.scrollHeight - list.scrollTop - list.clientHeight < 80
    if (list.scrollTop < 120 && !this.thread) void this.loadOlder()
    this.markRead()
  }

  /** The archive's page before the oldest message shown (the doc holds only the latest). */
  private async loadOlder(): Promise<void> {
    const doc = this.deps.link.doc
    const boundary = archivedThrough(doc)
    if (this.loadingOlder || this.olderDone || !this.deps.link.provider.synced) return
    if (boundary === 0) return
    const oldest = this.older.length ? this.older[0].seq : boundary + 1
    if (oldest <= 1) {
      this.olderDone = true
      return
    }
    this.loadingOlder = true
    try {
      const path = `/rooms/${encodeURIComponent(this.deps.room)}/messages?before_seq=${oldest}&limit=${PAGE}`
      const page = await api<{ items: Message[]; next_cursor: string | null }>('GET', path)
      const before = this.list.scrollHeight - this.list.scrollTop
      this.older = [...page.items, ...this.older]
      if (!page.next_cursor || !page.items.length) this.olderDone = true
      this.render()
      this.list.scrollTop = this.list.scrollHeight - before // keep what the reader looks at
    } catch {
      // offline or refused: try again on the next scroll
    } finally {
      this.loadingOlder = false
    }
  }

  private async loadReplies(): Promise<void> {
    try {
      const path = `/rooms/${encodeURIComponent(this.deps.room)}/messages?thread=${encodeURIComponent(this.thread!)}&limit=200`
      const page = await api<{ items: Message[] }>('GET', path)
      const parent = docMessage(this.deps.link.doc, this.thread!) ? [] : [await api<Message>('GET', `/rooms/${encodeURIComponent(this.deps.room)}/messages/${encodeURIComponent(this.thread!)}`)]
      this.older = [...parent, ...page.items]
      this.schedule()
    } catch {
      // the doc's replies are shown anyway
    }
  }

  /** Where I had read to when the room opened (my marker, private or not): the "New" line
   * stays above the first message after it while the room is open. */
  private async loadMarker(): Promise<void> {
    try {
      const page = await api<{ items: { user_id: string; up_to: number }[] }>('GET', `/rooms/${encodeURIComponent(this.deps.room)}/reads`)
      this.newAfter = page.items.find((m) => m.user_id === this.deps.me.id)?.up_to ?? 0
    } catch {
      this.newAfter = null // offline: no line
    }
    this.schedule()
  }

  /** Move my read marker to the latest message once I can see it. */
  private markRead(): void {
    if (this.thread || this.newAfter === undefined || !this.el.isConnected || document.visibilityState !== 'visible') return
    const list = this.list
    if (list.scrollHeight - list.scrollTop - list.clientHeight > 40) return
    const upTo = lastSeq(this.deps.link.doc)
    if (upTo <= this.readSent) return
    clearTimeout(this.readTimer)
    this.readPending = upTo
    this.readTimer = window.setTimeout(() => this.sendRead(), 400)
  }

  private sendRead(): void {
    const upTo = this.readPending
    this.readPending = 0
    if (upTo <= this.readSent) return
    const mine = readMarkers(this.deps.link.doc).get(this.deps.me.id) ?? 0
    this.readSent = upTo
    if (upTo > mine) this.deps.writer.write({ op: 'read', up_to: upTo }).catch(() => (this.readSent = 0))
  }

  private write(op: Parameters<ChatWriter['write']>[0]): void {
    this.error.hidden = true
    this.deps.writer.write(op).catch((err) => {
      this.error.hidden = false
      this.error.textContent = err instanceof ApiError ? `Not done: ${err.message}` : 'Not done: the server could not be reached. Try again.'
    })
  }

  private editLast(): void {
    const mine = this.visible().filter((m) => m.author.id === this.deps.me.id && !m.deleted && m.id !== this.thread)
    const last = mine[mine.length - 1]
    if (last) this.startEdit(last)
  }

  private startEdit(message: Message): void {
    const done = () => {
      this.editing = null
      this.render()
      this.composer.focus()
    }
    const box = editBox(message, (text) => (this.write({ op: 'edit', id: message.id, text }), done()), done)
    this.editing = { id: message.id, box }
    this.render()
  }

  private remove(message: Message): void {
    formDialog('Delete this message?', [], 'Delete', async () => {
      await this.deps.writer.write({ op: 'delete', id: message.id })
    })
  }
}
