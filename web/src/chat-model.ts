// The chat doc as the workspace reads it (docs/chat.md): messages in seq order, threads, read
// markers, the archive boundary; and the light markup rendered safely (text nodes only).
import * as Y from 'yjs'
import { h } from './dom'

export interface Author {
  id: string
  name: string
  handle: string | null
}

export interface Message {
  id: string
  seq: number
  author: Author
  created_at: number
  edited_at: number | null
  text: string
  deleted: boolean
  thread: string | null
  reply_count?: number
  last_reply_at?: number | null
  reactions: Record<string, string[]>
  mentions?: string[]
}

export interface Member {
  user_id: string
  name: string
  handle: string | null
  role: string
}

export const QUICK_REACTIONS = ['👍', '❤️', '😄', '🎉', '👀', '✅']

/** A message entry as the doc holds it (docs/chat.md): a plain object without the keys at their
 * default, or a Y.Map with the same keys in a doc written before. */
type Entry = Y.Map<unknown> | Partial<Message>

function fromDoc(entry: Entry): Message {
  const fields = entry instanceof Y.Map ? (entry.toJSON() as Partial<Message>) : entry
  return {
    edited_at: null,
    deleted: false,
    thread: null,
    reply_count: 0,
    last_reply_at: null,
    reactions: {},
    mentions: [],
    ...fields,
  } as Message
}

/** Every message of the doc (channel and threads), by seq. */
export function docMessages(doc: Y.Doc): Message[] {
  const found: Message[] = []
  doc.getMap<Entry>('messages').forEach((entry) => {
    if (entry === null || typeof entry !== 'object') return
    const message = fromDoc(entry)
    if (typeof message.seq === 'number' && message.author) found.push(message)
  })
  return found.sort((a, b) => a.seq - b.seq)
}

export function docMessage(doc: Y.Doc, id: string): Message | null {
  const entry = doc.getMap<Entry>('messages').get(id)
  return entry !== null && typeof entry === 'object' ? fromDoc(entry) : null
}

/** Messages with a seq at or below this are no longer in the doc (the archive has them). */
export function archivedThrough(doc: Y.Doc): number {
  const value = doc.getMap('info').get('archived_through')
  return typeof value === 'number' ? value : 0
}

export function lastSeq(doc: Y.Doc): number {
  const value = doc.getMap('info').get('last_seq')
  return typeof value === 'number' ? value : 0
}

/** The public read markers: user id -> the highest seq they have read. */
export function readMarkers(doc: Y.Doc): Map<string, number> {
  const found = new Map<string, number>()
  doc.getMap('reads').forEach((value, user) => {
    if (typeof value === 'number') found.set(user, value)
  })
  return found
}

export function sameDay(a: number, b: number): boolean {
  return new Date(a * 1000).toDateString() === new Date(b * 1000).toDateString()
}

export function dayLabel(seconds: number): string {
  const date = new Date(seconds * 1000)
  const today = new Date()
  const yesterday = new Date(Date.now() - 86400000)
  if (date.toDateString() === today.toDateString()) return 'Today'
  if (date.toDateString() === yesterday.toDateString()) return 'Yesterday'
  const sameYear = date.getFullYear() === today.getFullYear()
  return date.toLocaleDateString(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: sameYear ? undefined : 'numeric' })
}

// `code`, ```fenced```, URLs and @mentions, by docs/chat.md's rules (those the server counts
// mentions by, collab/chat/mentions.py): a fence of three or more backticks runs to the same
// fence or the end of the text; an inline span, from a run of backticks to the next run of the
// same length; a mention's `@` follows no letter, digit or `. _ + - @` (ann@example.com is no
// mention) and its handle is followed by none of letter, digit, `_ - @`. Everything else stays
// text.
const TOKEN =
  /(?<fence>`{3,})[\s\S]*?(?:\k<fence>|$)|(?<!`)(?<ticks>`+)(?!`)[\s\S]+?(?<!`)\k<ticks>(?!`)|https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"]|(?<![\p{L}\p{N}_.+@-])@[a-z0-9][a-z0-9._-]{0,31}(?![\p{L}\p{N}_@-])/giu
const ROOM = 'room' // @room names every member; @here, @channel and @everyone name nobody

/** The message text as nodes: never parsed as HTML. */
export function renderText(text: string, myHandle: string | null): Node[] {
  const nodes: Node[] = []
  let at = 0
  for (const match of text.matchAll(TOKEN)) {
    const token = match[0]
    const index = match.index ?? 0
    if (index > at) nodes.push(document.createTextNode(text.slice(at, index)))
    at = index + token.length
    const fence = match.groups?.fence
    const ticks = match.groups?.ticks
    if (fence) {
      const closed = token.length >= 2 * fence.length && token.endsWith(fence)
      const body = token.slice(fence.length, closed ? token.length - fence.length : undefined)
      nodes.push(h('pre', { class: 'code-block' }, h('code', {}, body.replace(/^\n/, ''))))
    } else if (ticks) {
      nodes.push(h('code', {}, token.slice(ticks.length, -ticks.length)))
    } else if (token.startsWith('@')) {
      const name = token.slice(1).toLowerCase().replace(/[._-]+$/, '')
      const me = name === myHandle?.toLowerCase() || name === ROOM
      nodes.push(h('span', { class: `mention${me ? ' mention-me' : ''}` }, token))
    } else {
      nodes.push(h('a', { href: token, target: '_blank', rel: 'noopener noreferrer nofollow' }, token))
    }
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)))
  return nodes
}
