// The workspace shell: sidebar (my rooms, create, join by invite link, me), the main pane
// (a room), the Ctrl+K switcher; routes r/{room}[/d/{doc}] and invite/{code}.
import { AtSign, Hash, LogOut, Menu, Moon, Plus, Search, Sun, SunMoon, UserPlus } from 'lucide'
import { actAs, api, ApiError, listAll, offlineCache, Unreachable, type Room, type Session } from './api'
import { avatar, clear, h, icon } from './dom'
import { linkExpiredPage, notMemberPage } from './pages'
import { RoomView } from './room'
import { currentTheme, setTheme, type Theme } from './theme'
import { openDialog, formDialog } from './dialog'
import { Feed, type FeedRoom, type Here } from './feed'

export class Shell {
  private rooms: Room[] = []
  private dms: Room[] = []
  private here = new Map<string, Here[]>() // room id -> who has it open (the live stream)
  private roomList = h('ul', { class: 'room-list', 'aria-label': 'Rooms' })
  private dmList = h('ul', { class: 'room-list dm-list', 'aria-label': 'Direct messages' })
  private feed: Feed | null = null
  private main = h('main', { class: 'main', id: 'main' })
  private sidebar: HTMLElement
  private view: RoomView | null = null

  constructor(private root: HTMLElement, readonly me: Session) {
    const user = me.user
    actAs(user.id)
    const themeButton = h('button', { class: 'icon-button', type: 'button', 'aria-label': 'Theme', title: 'Theme', onclick: () => this.cycleTheme(themeButton) })
    this.themeIcon(themeButton)
    this.sidebar = h(
      'nav',
      { class: 'sidebar', 'aria-label': 'Workspace' },
      h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, 'c'), h('span', {}, 'collab')),
      h('button', { class: 'switcher-button', type: 'button', onclick: () => this.switcher() }, icon(Search), h('span', {}, 'Jump to…'), h('kbd', {}, 'Ctrl K')),
      h(
        'div',
        { class: 'section-title' },
        h('span', {}, 'Rooms'),
        h('button', { class: 'icon-button small', type: 'button', 'aria-label': 'Create a room', title: 'Create a room', onclick: () => this.createRoom() }, icon(Plus)),
      ),
      this.roomList,
      h('button', { class: 'sidebar-action', type: 'button', onclick: () => this.joinRoom() }, icon(UserPlus), ' Join with an invite link'),
      h(
        'div',
        { class: 'section-title' },
        h('span', {}, 'Direct messages'),
        h('button', { class: 'icon-button small', type: 'button', 'aria-label': 'Message someone', title: 'Message someone', onclick: () => this.openDm() }, icon(Plus)),
      ),
      this.dmList,
      h(
        'div',
        { class: 'me' },
        avatar(user.id, user.name || 'Me'),
        h('span', { class: 'me-name', id: 'user-name' }, user.name || user.email || user.id),
        themeButton,
        h('form', { method: 'post', action: 'logout', class: 'logout', onsubmit: () => this.feed?.stop() }, h('button', { class: 'icon-button', type: 'submit', 'aria-label': 'Log out', title: 'Log out' }, icon(LogOut), h('span', { class: 'visually-hidden' }, 'Log out'))),
      ),
    )
    const drawerToggle = h('button', { class: 'icon-button drawer-toggle', type: 'button', 'aria-label': 'Rooms', onclick: () => root.classList.toggle('drawer-open') }, icon(Menu))
    clear(root, me.dev_mode ? h('div', { class: 'dev-banner', id: 'dev-mode' }, 'DEV MODE: no identity provider configured; loopback only.') : null, h('div', { class: 'layout' }, this.sidebar, h('div', { class: 'scrim', onclick: () => root.classList.remove('drawer-open') }), drawerToggle, this.main))
    document.addEventListener('keydown', (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k') {
        e.preventDefault()
        this.switcher()
      }
    })
    window.addEventListener('popstate', () => void this.navigate())
    document.addEventListener('click', (e) => {
      const a = (e.target as Element).closest('a[data-route]') as HTMLAnchorElement | null
      if (a && !e.ctrlKey && !e.metaKey && e.button === 0) {
        e.preventDefault()
        this.go(a.getAttribute('href') ?? './')
      }
    })
  }

  async start(): Promise<void> {
    await this.loadRooms()
    this.feed = new Feed({
      rooms: (rooms, dms) => this.fromFeed(rooms, dms),
      room: (change) => this.roomFromFeed(change),
    })
    await this.navigate()
  }

  private fromFeed(rooms: FeedRoom[], dms: FeedRoom[]): void {
    const strip = ({ here, ...room }: FeedRoom): Room => room
    this.rooms = rooms.map(strip)
    this.dms = dms.map(strip)
    this.here = new Map([...rooms, ...dms].map((r) => [r.id, r.here]))
    offlineCache.set('rooms', this.rooms)
    offlineCache.set('dms', this.dms)
    this.renderRooms()
  }

  private roomFromFeed(change: Pick<FeedRoom, 'id' | 'unread' | 'mentions' | 'here'>): void {
    const room = [...this.rooms, ...this.dms].find((r) => r.id === change.id)
    if (room) {
      room.unread = change.unread
      room.mentions = change.mentions
    }
    this.here.set(change.id, change.here)
    this.renderRooms()
  }

  /** A room's or DM's name as the sidebar shows it (a DM: the other person). */
  titleOf(room: Room): string {
    return room.kind === 'dm' && room.peer ? room.peer.name || room.peer.handle || 'Direct message' : room.title
  }

  go(href: string): void {
    history.pushState(null, '', href)
    this.root.classList.remove('drawer-open')
    void this.navigate()
  }

  async loadRooms(): Promise<void> {
    try {
      this.rooms = await listAll<Room>('/rooms')
      this.dms = await listAll<Room>('/dms')
      offlineCache.set('rooms', this.rooms)
      offlineCache.set('dms', this.dms)
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err
      this.rooms = offlineCache.get<Room[]>('rooms') ?? this.rooms
      this.dms = offlineCache.get<Room[]>('dms') ?? this.dms
    }
    this.renderRooms()
  }

  private renderRooms(): void {
    const items = this.rooms.map((room) => this.roomItem(room))
    clear(this.roomList, items.length ? items : h('li', { class: 'muted empty-rooms' }, 'No rooms yet: create one, or join with an invite link.'))
    const dms = this.dms.map((room) => this.roomItem(room))
    clear(this.dmList, dms.length ? dms : h('li', { class: 'muted empty-rooms' }, 'No direct messages yet.'))
  }

  private roomItem(room: Room): HTMLElement {
    const current = this.view?.room
    const unread = room.id === current ? 0 : room.unread ?? 0 // the open room is read as it comes
    const mentions = room.id === current ? 0 : room.mentions ?? 0
    const others = (this.here.get(room.id) ?? []).filter((p) => p.id !== this.me.user.id)
    const dm = room.kind === 'dm'
    const title = this.titleOf(room)
    const presence = others.length
      ? h('span', { class: 'here-dot', title: `Here now: ${others.map((p) => p.name).join(', ')}`, 'data-here': others.length }, dm ? '' : String(others.length))
      : null
    return h(
      'li',
      {},
      h(
        'a',
        {
          href: `r/${encodeURIComponent(room.id)}`,
          'data-route': '',
          'data-room': room.id,
          class: `room-link${room.id === current ? ' active' : ''}${unread ? ' unread' : ''}`,
          'aria-current': room.id === current ? 'page' : null,
          'aria-label': `${title}${unread ? `, ${unread} unread` : ''}${mentions ? `, ${mentions} mentions` : ''}`,
        },
        dm && room.peer ? avatar(room.peer.id, title, 'xs') : icon(Hash),
        h('span', { class: 'room-title' }, title),
        presence,
        mentions ? h('span', { class: 'badge mention', title: 'Mentions', 'data-mentions': mentions }, `@${mentions}`) : null,
        unread ? h('span', { class: 'badge', title: 'Unread', 'data-unread': unread }, unread >= 1000 ? '999+' : String(unread)) : null,
      ),
    )
  }

  openDm(): void {
    formDialog('Message someone', [{ name: 'user', label: 'Their handle', placeholder: 'e.g. ann', required: true }], 'Open', async (values) => {
      const room = await api<Room>('POST', '/dms', { user: values.user.trim().replace(/^@/, '') })
      if (!this.dms.some((d) => d.id === room.id)) this.dms.push(room)
      this.renderRooms()
      this.go(`r/${encodeURIComponent(room.id)}`)
    })
  }

  async navigate(): Promise<void> {
    const base = new URL(document.baseURI).pathname
    const path = decodeURIComponent(location.pathname.startsWith(base) ? location.pathname.slice(base.length) : '')
    const parts = path.split('/').filter(Boolean)
    if (parts[0] === 'invite' && parts[1]) return this.acceptInvite(parts[1])
    if (parts[0] === 'r' && parts[1]) {
      const doc = parts[2] === 'd' && parts[3] ? parts[3] : null
      if (this.view && this.view.room === parts[1]) {
        this.view.open(doc)
      } else {
        this.view?.destroy()
        this.view = null
        const room = parts[1]
        let info: Room
        try {
          info = await api<Room>('GET', `/rooms/${encodeURIComponent(room)}`)
        } catch (err) {
          if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
            notMemberPage(this.main, room)
            this.renderRooms()
            return
          }
          const cached = [...this.rooms, ...this.dms].find((r) => r.id === room)
          if (!(err instanceof Unreachable) || !cached) throw err
          info = cached // offline: what the room list said last
        }
        this.view = new RoomView(this, this.main, { ...info, title: this.titleOf(info) })
        this.view.open(doc)
      }
      this.renderRooms()
      return
    }
    this.view?.destroy()
    this.view = null
    this.renderRooms()
    this.home()
  }

  private home(): void {
    if (this.rooms.length > 0) {
      this.go(`r/${encodeURIComponent(this.rooms[0].id)}`)
      return
    }
    clear(
      this.main,
      h(
        'section',
        { class: 'empty-state' },
        h('h1', {}, 'Start your first room'),
        h('p', { class: 'muted' }, 'A room holds a team’s chat and documents. Create one and invite people, or join one with an invite link.'),
        h('div', { class: 'actions' }, h('button', { class: 'button primary', type: 'button', onclick: () => this.createRoom() }, icon(Plus), ' Create a room'), h('button', { class: 'button', type: 'button', onclick: () => this.joinRoom() }, icon(UserPlus), ' Join with a link')),
      ),
    )
  }

  private async acceptInvite(code: string): Promise<void> {
    try {
      const answer = await api<{ room: string; role: string }>('POST', `/invites/${encodeURIComponent(code)}/accept`)
      await this.loadRooms()
      history.replaceState(null, '', `r/${encodeURIComponent(answer.room)}`)
      await this.navigate()
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 410 || err.status === 403)) {
        linkExpiredPage(this.main)
        return
      }
      throw err
    }
  }

  createRoom(): void {
    formDialog('Create a room', [{ name: 'title', label: 'Name', placeholder: 'e.g. Design team', required: true }], 'Create', async (values) => {
      const room = await api<Room>('POST', '/rooms', { title: values.title })
      this.rooms.push(room)
      this.go(`r/${encodeURIComponent(room.id)}`)
    })
  }

  joinRoom(): void {
    formDialog('Join a room', [{ name: 'link', label: 'Invite link', placeholder: 'https://…/invite/…', required: true }], 'Join', async (values) => {
      const link = values.link.trim()
      const code = link.includes('/invite/') ? link.split('/invite/')[1].split(/[?#/]/)[0] : link
      this.go(`invite/${encodeURIComponent(code)}`)
    })
  }

  switcher(): void {
    const input = h('input', { type: 'search', class: 'input', placeholder: 'Jump to a room…', 'aria-label': 'Room name', autocomplete: 'off' })
    const list = h('ul', { class: 'switcher-list', role: 'listbox' })
    let selected = 0
    let matches: Room[] = []
    const render = () => {
      const q = input.value.toLowerCase()
      matches = [...this.rooms, ...this.dms].filter((r) => this.titleOf(r).toLowerCase().includes(q) || r.id.toLowerCase().includes(q))
      selected = Math.min(selected, Math.max(matches.length - 1, 0))
      clear(list, matches.map((r, i) => h('li', { role: 'option', 'aria-selected': i === selected ? 'true' : 'false', class: i === selected ? 'selected' : '', onclick: () => pick(r) }, icon(r.kind === 'dm' ? AtSign : Hash), ' ', this.titleOf(r))))
      if (!matches.length) list.append(h('li', { class: 'muted' }, 'No room matches.'))
    }
    const dialog = openDialog('Switch room', h('div', { class: 'switcher' }, input, list))
    const pick = (room: Room) => {
      dialog.close()
      this.go(`r/${encodeURIComponent(room.id)}`)
    }
    input.addEventListener('input', () => ((selected = 0), render()))
    input.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown') (selected = Math.min(selected + 1, matches.length - 1)), render(), e.preventDefault()
      else if (e.key === 'ArrowUp') (selected = Math.max(selected - 1, 0)), render(), e.preventDefault()
      else if (e.key === 'Enter' && matches[selected]) pick(matches[selected])
    })
    render()
    input.focus()
  }

  private themeIcon(button: HTMLElement): void {
    const theme = currentTheme()
    clear(button, icon(theme === 'dark' ? Moon : theme === 'light' ? Sun : SunMoon))
    button.title = `Theme: ${theme}`
  }

  private cycleTheme(button: HTMLElement): void {
    const order: Theme[] = ['system', 'light', 'dark']
    setTheme(order[(order.indexOf(currentTheme()) + 1) % order.length])
    this.themeIcon(button)
  }

  /** The open room was read: its badge goes. */
  readRoom(room: string): void {
    const found = [...this.rooms, ...this.dms].find((r) => r.id === room)
    if (found && (found.unread || found.mentions)) {
      found.unread = 0
      found.mentions = 0
      this.renderRooms()
    }
  }

  roleChanged(room: string, role: Room['role']): void {
    const found = this.rooms.find((r) => r.id === room)
    if (found) found.role = role
  }
}
