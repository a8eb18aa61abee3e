// One room: header (title, who is here and where, panels), the chat (main pane, or beside an
// open document), the documents panel, the editor, and the connection banner.
import { FileText, MessageSquare, Files, PanelRight, Pencil, Plus, Trash2, Type, ArrowLeft, Lock } from 'lucide'
import { api, ApiError, atLeast, listAll, type DocInfo, type Role, type Room } from './api'
import { ChatView } from './chat'
import type { Member, Message } from './chat-model'
import { ChatWriter, Poster } from './chat-send'
import { DocLink, type Access } from './connection'
import { formDialog } from './dialog'
import { avatar, clear, colourOf, h, icon, relativeTime } from './dom'
import type { Editor } from './editor-text'
import type { Shell } from './shell'

interface Here {
  id: string
  name: string
  doc: string | null
}

export class RoomView {
  readonly room: string
  private role: Role
  private chatLink: DocLink
  private chat: ChatView
  private thread: ChatView | null = null
  readonly writer: ChatWriter
  private poster: Poster
  private members: Member[] = []
  private docLink: DocLink | null = null
  private editor: Editor | null = null
  private docName: string | null = null
  private docs: DocInfo[] = []
  private header = h('header', { class: 'room-header' })
  private banner = h('div', { class: 'banner', role: 'status', hidden: true })
  private body = h('div', { class: 'room-body' })
  private primary = h('section', { class: 'pane primary' })
  private side = h('aside', { class: 'pane side', 'aria-label': 'Side panel' })
  private docsPanel = h('section', { class: 'docs-panel', 'aria-label': 'Documents' })
  private presence = h('div', { class: 'presence', 'aria-label': 'Here now' })
  private saveMark = h('span', { class: 'save-mark', role: 'status' })
  private tick = 0

  constructor(private shell: Shell, root: HTMLElement, private info: Room) {
    this.room = info.id
    this.role = info.role
    const me = shell.me.user
    this.chatLink = new DocLink(this.room, 'chat', null)
    this.writer = new ChatWriter(this.room, this.chatLink)
    this.poster = new Poster(this.room, this.writer)
    this.chat = new ChatView(this.chatDeps(), this.role)
    void this.poster.load()
    this.chatLink.onAccess = (access) => this.accessChanged(access)
    this.chatLink.provider.awareness.setLocalStateField('user', { id: me.id, name: me.name || me.id, color: colourOf(me.id) })
    this.chatLink.provider.awareness.on('change', () => this.renderPresence())
    this.chatLink.subscribe(() => this.renderBanner())
    this.chatLink.provider.on('status', ({ status }: { status: string }) => {
      if (status === 'connected') {
        void this.loadDocs() // what changed while away (or offline)
        if (!this.members.length) void this.loadMembers()
      }
    })
    this.chatLink.provider.on('sync', (synced: boolean) => {
      if (synced) void this.poster.flush() // the outbox goes out, over this socket now
    })
    window.addEventListener('online', this.onOnline)
    document.addEventListener('keydown', this.onKey)
    void this.loadMembers()
    this.body.append(this.primary, this.side)
    clear(root, this.header, this.banner, this.body)
    this.renderHeader()
    this.tick = window.setInterval(() => this.renderBanner(), 1000)
    void this.loadDocs()
  }

  private onOnline = () => void this.poster.flush()
  private onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape' && this.thread && !e.defaultPrevented && !document.querySelector('dialog[open]')) this.closeThread()
  }

  destroy(): void {
    window.clearInterval(this.tick)
    window.removeEventListener('online', this.onOnline)
    document.removeEventListener('keydown', this.onKey)
    this.closeDoc()
    this.thread?.destroy()
    this.chat.destroy()
    this.poster.destroy()
    this.chatLink.destroy()
  }

  private chatDeps() {
    const me = this.shell.me.user
    return {
      room: this.room,
      link: this.chatLink,
      writer: this.writer,
      poster: this.poster,
      me: { id: me.id, name: me.name || me.id, handle: me.handle ?? null },
      members: () => this.members,
      openThread: (m: Message) => this.openThread(m),
    }
  }

  private async loadMembers(): Promise<void> {
    try {
      this.members = await listAll<Member>(`/rooms/${encodeURIComponent(this.room)}/members`)
    } catch {
      // offline: autocomplete waits for the next connection
    }
  }

  /** A thread beside the channel (or beside the document), in the side panel; Esc closes it. */
  openThread(message: Message): void {
    this.thread?.destroy()
    this.thread = new ChatView(this.chatDeps(), this.role, message.id, () => this.closeThread())
    clear(this.side, this.thread.el)
    this.body.classList.add('side-open', 'thread-open')
    this.thread.focus()
  }

  closeThread(): void {
    if (!this.thread) return
    this.thread.destroy()
    this.thread = null
    this.body.classList.remove('side-open', 'thread-open')
    clear(this.side, this.docName === null ? this.docsPanel : this.chat.el)
    this.chat.focus()
  }

  /** Show the chat (doc null) or a document with the chat beside it. */
  open(doc: string | null): void {
    if (doc === this.docName && (doc === null ? this.chat.el.isConnected : this.editor !== null)) return
    this.closeDoc()
    this.thread?.destroy()
    this.thread = null
    this.body.classList.remove('thread-open')
    this.docName = doc
    this.chatLink.provider.awareness.setLocalStateField('doc', doc)
    if (doc === null) {
      clear(this.primary, this.chat.el)
      clear(this.side, this.docsPanel)
      this.renderDocs()
    } else {
      clear(this.side, this.chat.el)
      void this.openDoc(doc)
    }
    this.body.classList.toggle('doc-open', doc !== null)
    this.renderHeader()
  }

  private closeDoc(): void {
    this.editor?.destroy()
    this.editor = null
    this.docLink?.destroy()
    this.docLink = null
  }

  private get canWrite(): boolean {
    return atLeast(this.role, 'editor')
  }

  private async openDoc(name: string): Promise<void> {
    if (!this.docs.some((d) => d.name === name)) await this.loadDocs()
    const info = this.docs.find((d) => d.name === name) ?? { name, title: name, kind: 'text', generation: null, size: 0, updated_at: null }
    const me = this.shell.me.user
    const link = new DocLink(this.room, name, info.generation)
    this.docLink = link
    link.provider.awareness.setLocalStateField('user', { id: me.id, name: me.name || me.id, color: colourOf(me.id), colorLight: colourOf(me.id).replace('45%)', '45% / 0.2)') })
    link.onAccess = (access) => this.accessChanged(access)
    link.subscribe(() => {
      this.renderBanner()
      this.renderSaved()
    })
    const readOnlyBanner = h('div', { class: 'readonly-banner', hidden: this.canWrite }, icon(Lock), ` Read only: you are a ${this.role} in this room; editing needs the editor role.`)
    const surface = h('div', { class: `editor-surface kind-${info.kind}`, 'data-kind': info.kind })
    clear(
      this.primary,
      h(
        'div',
        { class: 'doc-header' },
        h('a', { class: 'icon-button', href: `r/${encodeURIComponent(this.room)}`, 'data-route': '', 'aria-label': 'Back to the room', title: 'Back to the room' }, icon(ArrowLeft)),
        icon(info.kind === 'rich' ? Type : FileText),
        h('h2', { class: 'doc-title' }, info.title || info.name),
        this.saveMark,
      ),
      readOnlyBanner,
      surface,
    )
    const user = { name: me.name || me.id, color: colourOf(me.id) }
    const editor =
      info.kind === 'rich'
        ? (await import('./editor-rich')).richEditor(surface, link, !this.canWrite, user)
        : (await import('./editor-text')).textEditor(surface, link, !this.canWrite)
    if (this.docLink !== link) {
      editor.destroy() // another doc was opened while this one loaded
      return
    }
    this.editor = editor
    this.renderSaved()
  }

  private accessChanged(access: Access): void {
    if (access.role === this.role) return
    this.role = access.role
    this.shell.roleChanged(this.room, access.role)
    this.chat.setRole(access.role)
    this.thread?.setRole(access.role)
    this.editor?.setReadOnly(!this.canWrite)
    const banner = this.primary.querySelector('.readonly-banner') as HTMLElement | null
    if (banner) {
      banner.hidden = this.canWrite
      banner.lastChild!.textContent = ` Read only: you are a ${this.role} in this room; editing needs the editor role.`
    }
    this.renderHeader()
    this.renderSaved()
  }

  private renderSaved(): void {
    const link = this.docLink
    if (!link || !this.canWrite) {
      this.saveMark.textContent = ''
      return
    }
    const saved = link.isSaved
    this.saveMark.textContent = saved ? 'Saved' : 'Saving…'
    this.saveMark.dataset.state = saved ? 'saved' : 'saving'
  }

  private renderBanner(): void {
    const links = [this.chatLink, this.docLink].filter((l): l is DocLink => l !== null)
    const closed = links.find((l) => l.state.kind === 'closed')
    const retrying = links.find((l) => l.state.kind === 'retrying')
    if (closed && closed.state.kind === 'closed') {
      this.banner.hidden = false
      this.banner.className = 'banner error'
      const why = closed.state.code === 4403 ? 'You no longer have access to this room.' : closed.state.code === 4401 ? 'Your session ended: sign in again.' : `The server closed the connection (${closed.state.code}).`
      clear(this.banner, why, ' ', h('a', { href: './' }, 'Reload'))
    } else if (retrying && retrying.state.kind === 'retrying') {
      const seconds = Math.max(0, Math.ceil((retrying.state.at - Date.now()) / 1000))
      this.banner.hidden = false
      this.banner.className = 'banner warning'
      clear(this.banner, h('span', { class: 'banner-text' }, seconds > 0 ? `Connection lost. Reconnecting in ${seconds} s…` : 'Reconnecting…'), ' ', h('button', { class: 'link-button', type: 'button', onclick: () => links.forEach((l) => l.retryNow()) }, 'Retry now'))
    } else if (links.some((l) => l.state.kind === 'connecting') && !this.banner.hidden) {
      clear(this.banner, 'Reconnecting…')
    } else {
      this.banner.hidden = true
    }
  }

  private renderHeader(): void {
    const toggle = h('button', { class: 'icon-button side-toggle', type: 'button', 'aria-label': 'Toggle the side panel', title: 'Side panel', onclick: () => this.body.classList.toggle('side-open') }, icon(this.docName ? MessageSquare : Files))
    clear(
      this.header,
      h('div', { class: 'room-title' }, h('h1', {}, this.info.title), h('span', { class: 'role-chip', title: 'Your role' }, this.role)),
      this.presence,
      toggle,
      h('span', { class: 'visually-hidden' }, icon(PanelRight)),
    )
    this.renderPresence()
  }

  private renderPresence(): void {
    const here = new Map<string, Here>()
    this.chatLink.provider.awareness.getStates().forEach((state: any) => {
      const user = state?.user
      if (user?.id && user?.name) here.set(user.id, { id: user.id, name: user.name, doc: state.doc ?? null })
    })
    const people = [...here.values()]
    clear(
      this.presence,
      people.slice(0, 6).map((p) => {
        const where = p.doc ? this.docs.find((d) => d.name === p.doc)?.title ?? p.doc : 'chat'
        const el = avatar(p.id, p.name, 'sm')
        el.title = `${p.name} — in ${where}`
        el.dataset.user = p.name
        el.dataset.doc = p.doc ?? ''
        return el
      }),
      people.length > 6 ? h('span', { class: 'more' }, `+${people.length - 6}`) : null,
      h('span', { class: 'presence-count' }, `${people.length} here`),
    )
    this.renderDocs()
  }

  async loadDocs(): Promise<void> {
    try {
      const all = await listAll<DocInfo>(`/rooms/${encodeURIComponent(this.room)}/docs`)
      this.docs = all.filter((d) => d.name !== 'chat' && !d.name.startsWith('_')) // the server's own
    } catch (err) {
      if (!(err instanceof ApiError)) return
    }
    this.renderDocs()
  }

  private renderDocs(): void {
    const here = new Map<string, string[]>()
    this.chatLink.provider.awareness.getStates().forEach((state: any) => {
      if (state?.doc && state?.user?.name) here.set(state.doc, [...(here.get(state.doc) ?? []), state.user.name])
    })
    const items = this.docs.map((doc) =>
      h(
        'li',
        { class: 'doc-item', 'data-doc': doc.name },
        h(
          'a',
          { href: `r/${encodeURIComponent(this.room)}/d/${encodeURIComponent(doc.name)}`, 'data-route': '', class: 'doc-link' },
          icon(doc.kind === 'rich' ? Type : FileText),
          h('span', { class: 'doc-name' }, doc.title || doc.name),
          h('span', { class: 'doc-meta muted' }, here.has(doc.name) ? `${here.get(doc.name)!.join(', ')} editing` : doc.updated_at ? relativeTime(doc.updated_at) : doc.size ? '' : 'empty'),
        ),
        this.canWrite ? h('button', { class: 'icon-button small', type: 'button', 'aria-label': `Rename ${doc.title || doc.name}`, title: 'Rename', onclick: () => this.renameDoc(doc) }, icon(Pencil)) : null,
        atLeast(this.role, 'owner') ? h('button', { class: 'icon-button small danger', type: 'button', 'aria-label': `Delete ${doc.title || doc.name}`, title: 'Delete', onclick: () => this.deleteDoc(doc) }, icon(Trash2)) : null,
      ),
    )
    clear(
      this.docsPanel,
      h('div', { class: 'section-title' }, h('h2', {}, 'Documents'), this.canWrite ? h('button', { class: 'icon-button small', type: 'button', 'aria-label': 'New document', title: 'New document', onclick: () => this.createDoc() }, icon(Plus)) : null),
      items.length ? h('ul', { class: 'doc-list' }, items) : h('p', { class: 'muted empty-docs' }, this.canWrite ? 'No documents yet. Create one with +.' : 'No documents yet.'),
    )
  }

  private createDoc(): void {
    formDialog(
      'New document',
      [
        { name: 'title', label: 'Title', placeholder: 'e.g. Meeting notes', required: true },
        { name: 'kind', label: 'Kind', value: 'rich', options: [['rich', 'Rich text'], ['text', 'Plain text / Markdown']] },
      ],
      'Create',
      async (values) => {
        const slug = values.title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'doc'
        const name = `${slug}-${Math.random().toString(36).slice(2, 7)}`
        await api('PATCH', `/rooms/${encodeURIComponent(this.room)}/docs/${encodeURIComponent(name)}`, { title: values.title.trim(), kind: values.kind })
        await this.loadDocs()
        this.shell.go(`r/${encodeURIComponent(this.room)}/d/${encodeURIComponent(name)}`)
      },
    )
  }

  private renameDoc(doc: DocInfo): void {
    formDialog('Rename document', [{ name: 'title', label: 'Title', value: doc.title || doc.name, required: true }], 'Rename', async (values) => {
      await api('PATCH', `/rooms/${encodeURIComponent(this.room)}/docs/${encodeURIComponent(doc.name)}`, { title: values.title.trim() })
      await this.loadDocs()
    })
  }

  private deleteDoc(doc: DocInfo): void {
    formDialog(`Delete “${doc.title || doc.name}”?`, [], 'Delete', async () => {
      await api('DELETE', `/rooms/${encodeURIComponent(this.room)}/docs/${encodeURIComponent(doc.name)}`)
      await this.loadDocs()
      if (this.docName === doc.name) this.shell.go(`r/${encodeURIComponent(this.room)}`)
    })
  }
}
