// One message as a row: avatar and header (unless grouped), text with light markup, the edited
// mark, reaction pills (mine highlighted; a click adds or takes back mine), the thread summary,
// "seen by", and the actions shown on hover or focus: react, reply in thread, edit, delete.
import { Check, CircleAlert, Clock, MessageSquareReply, Pencil, RotateCw, SmilePlus, Trash2 } from 'lucide'
import { atLeast, type Role } from './api'
import { QUICK_REACTIONS, renderText, type Message } from './chat-model'
import { absoluteTime, avatar, h, icon, relativeTime } from './dom'
import type { Pending } from './outbox'

export interface RowContext {
  me: { id: string; name: string; handle: string | null }
  role: Role
  inThread: boolean
  react: (message: Message, emoji: string, add: boolean) => void
  reply: (message: Message) => void
  edit: (message: Message) => void
  remove: (message: Message) => void
  names: (userId: string) => string
}

export function messageRow(message: Message, grouped: boolean, ctx: RowContext, seenBy: string[] = []): HTMLElement {
  const mine = message.author.id === ctx.me.id
  const text = message.deleted
    ? h('p', { class: 'message-text deleted' }, 'This message was deleted.')
    : h('p', { class: 'message-text' }, renderText(message.text, ctx.me.handle))
  return h(
    'article',
    {
      class: `message${grouped ? ' grouped' : ''}${mine ? ' mine' : ''}`,
      'data-id': message.id,
      'data-seq': message.seq,
      'data-state': mine ? 'sent' : null,
      tabindex: '-1',
    },
    grouped ? h('time', { class: 'gutter', title: absoluteTime(message.created_at) }, shortTime(message.created_at)) : avatar(message.author.id, message.author.name),
    h(
      'div',
      { class: 'message-body' },
      grouped ? null : header(message.author.name, message.created_at),
      text,
      message.edited_at && !message.deleted ? h('span', { class: 'edited', title: `Edited ${absoluteTime(message.edited_at)}` }, '(edited)') : null,
      message.deleted ? null : reactions(message, ctx),
      !ctx.inThread && message.reply_count ? threadSummary(message, ctx) : null,
      seenBy.length ? h('div', { class: 'seen-by', title: seenBy.join(', ') }, `Seen by ${listNames(seenBy)}`) : null,
    ),
    mine ? h('span', { class: 'state state-sent', title: 'Sent' }, icon(Check, 'sent')) : null,
    message.deleted ? null : actions(message, ctx),
  )
}

function header(name: string, at: number | null): HTMLElement {
  return h(
    'header',
    { class: 'message-header' },
    h('strong', { class: 'author' }, name),
    at === null ? null : h('time', { title: absoluteTime(at), datetime: new Date(at * 1000).toISOString() }, relativeTime(at)),
  )
}

function shortTime(seconds: number): string {
  return new Date(seconds * 1000).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
}

function listNames(names: string[]): string {
  if (names.length <= 3) return names.join(', ')
  return `${names.slice(0, 3).join(', ')} and ${names.length - 3} more`
}

function reactions(message: Message, ctx: RowContext): HTMLElement | null {
  const found = Object.entries(message.reactions ?? {}).filter(([, users]) => users.length > 0)
  if (!found.length) return null
  const canReact = atLeast(ctx.role, 'commenter')
  return h(
    'div',
    { class: 'reactions' },
    found.map(([emoji, users]) => {
      const mine = users.includes(ctx.me.id)
      return h(
        'button',
        {
          class: `reaction${mine ? ' mine' : ''}`,
          type: 'button',
          'data-emoji': emoji,
          'aria-pressed': mine ? 'true' : 'false',
          title: users.map(ctx.names).join(', '),
          disabled: !canReact,
          onclick: () => ctx.react(message, emoji, !mine),
        },
        `${emoji} ${users.length}`,
      )
    }),
  )
}

function threadSummary(message: Message, ctx: RowContext): HTMLElement {
  const count = message.reply_count ?? 0
  const last = message.last_reply_at ? ` · last ${relativeTime(message.last_reply_at)}` : ''
  return h(
    'button',
    { class: 'thread-summary link-button', type: 'button', onclick: () => ctx.reply(message) },
    icon(MessageSquareReply),
    ` ${count} ${count === 1 ? 'reply' : 'replies'}${last}`,
  )
}

function actions(message: Message, ctx: RowContext): HTMLElement | null {
  const mine = message.author.id === ctx.me.id
  const canPost = atLeast(ctx.role, 'commenter')
  const buttons: HTMLElement[] = []
  if (canPost) {
    const picker = h(
      'div',
      { class: 'emoji-picker', role: 'menu', hidden: true },
      QUICK_REACTIONS.map((emoji) =>
        h('button', { type: 'button', role: 'menuitem', class: 'emoji', 'aria-label': `React ${emoji}`, onclick: () => ((picker.hidden = true), ctx.react(message, emoji, !(message.reactions?.[emoji] ?? []).includes(ctx.me.id))) }, emoji),
      ),
    )
    buttons.push(
      h('span', { class: 'picker-anchor' }, h('button', { class: 'icon-button small', type: 'button', 'aria-label': 'Add a reaction', title: 'React', onclick: () => (picker.hidden = !picker.hidden) }, icon(SmilePlus)), picker),
    )
    if (!ctx.inThread) buttons.push(h('button', { class: 'icon-button small', type: 'button', 'aria-label': 'Reply in thread', title: 'Reply in thread', onclick: () => ctx.reply(message) }, icon(MessageSquareReply)))
  }
  if (mine && canPost) buttons.push(h('button', { class: 'icon-button small', type: 'button', 'aria-label': 'Edit', title: 'Edit (Up in an empty box)', onclick: () => ctx.edit(message) }, icon(Pencil)))
  if ((mine && canPost) || atLeast(ctx.role, 'owner')) buttons.push(h('button', { class: 'icon-button small danger', type: 'button', 'aria-label': 'Delete', title: 'Delete', onclick: () => ctx.remove(message) }, icon(Trash2)))
  return buttons.length ? h('div', { class: 'message-actions', role: 'toolbar', 'aria-label': 'Message actions' }, buttons) : null
}

/** My message that the doc does not show yet: sending, failed (with retry), or sent. */
export function pendingRow(item: Pending, state: 'sent' | 'failed' | 'sending', grouped: boolean, me: { id: string; name: string }, retry: () => void): HTMLElement {
  const status =
    state === 'failed'
      ? h('span', { class: 'state state-failed' }, icon(CircleAlert), ` Failed: ${item.failed} `, h('button', { class: 'link-button', type: 'button', onclick: retry }, icon(RotateCw), ' Retry'))
      : state === 'sending'
        ? h('span', { class: 'state state-sending' }, icon(Clock), ' Sending…')
        : h('span', { class: 'state state-sent', title: 'Sent' }, icon(Check, 'sent'))
  return h(
    'article',
    { class: `message mine pending ${state}${grouped ? ' grouped' : ''}`, 'data-client-id': item.client_id, 'data-state': state },
    grouped ? h('span', { class: 'gutter' }) : avatar(me.id, me.name),
    h('div', { class: 'message-body' }, grouped ? null : header(me.name, null), h('p', { class: 'message-text' }, item.text)),
    status,
  )
}

/** The inline editor that replaces a message's text: Enter saves, Esc cancels. */
export function editBox(message: Message, save: (text: string) => void, cancel: () => void): HTMLElement {
  const input = h('textarea', { class: 'edit-input input', 'aria-label': 'Edit message', rows: '2' })
  input.value = message.text
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault()
      const text = input.value.trim()
      if (text && text !== message.text) save(text)
      else cancel()
    } else if (e.key === 'Escape') {
      e.preventDefault()
      e.stopPropagation()
      cancel()
    }
  })
  const box = h('div', { class: 'edit-box' }, input, h('p', { class: 'muted edit-hint' }, 'Enter saves · Esc cancels'))
  requestAnimationFrame(() => {
    input.focus()
    input.setSelectionRange(input.value.length, input.value.length)
  })
  return box
}
