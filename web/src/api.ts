// The HTTP API (/api/v1), with the session cookie; errors carry the server's code.
import { outbox } from './outbox'

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message)
  }
}

/** The server could not be reached at all (offline, refused, cut). */
export class Unreachable extends Error {}

// Whom this page acts for, sent with every call and socket: the session cookie is the browser
// profile's, so once another user signs in there (in another tab) the server refuses this
// page's calls (401, 4401) instead of doing them as that user.
let actingFor: string | null = null
export function actAs(userId: string): void {
  actingFor = userId
}
export function userParam(): Record<string, string> {
  return actingFor === null ? {} : { as_user: actingFor }
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  let response: Response
  const headers: Record<string, string> = actingFor === null ? {} : { 'X-Collab-User': actingFor }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  try {
    response = await fetch('api/v1' + path, {
      method,
      credentials: 'same-origin',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch (err) {
    throw new Unreachable(String(err))
  }
  if (response.status === 204) return undefined as T
  let data: any = null
  try {
    data = await response.json()
  } catch {
    if (response.status >= 500 || response.status === 0) throw new Unreachable(`HTTP ${response.status}`)
  }
  if (!response.ok) {
    const error = data?.error ?? {}
    throw new ApiError(response.status, error.code ?? 'error', error.message ?? `HTTP ${response.status}`)
  }
  return data as T
}

export interface User {
  id: string
  name: string
  handle?: string | null
  email: string | null
  is_admin: boolean
}
export interface Session {
  user: User
  dev_mode: boolean
  expires_at: number
}
export type Role = 'viewer' | 'commenter' | 'editor' | 'owner'
export const ROLES: Role[] = ['viewer', 'commenter', 'editor', 'owner']
export const atLeast = (role: Role | null, minimum: Role) =>
  role !== null && ROLES.indexOf(role) >= ROLES.indexOf(minimum)

export interface Room {
  id: string
  title: string
  role: Role
  unread?: number
  mentions?: number
  kind?: 'room' | 'dm'
  peer?: { id: string; name: string; handle: string | null } | null
}
export interface DocInfo {
  name: string
  title: string
  kind: 'text' | 'rich'
  generation: string | null
  size: number
  updated_at: number | null
}

// What the last successful answers said, so a reload while offline still opens the
// workspace (with the outbox) instead of only saying the server is unreachable.
const CACHE_PREFIX = 'collab-cache:'
export const offlineCache = {
  get<T>(key: string): T | null {
    try {
      return JSON.parse(localStorage.getItem(CACHE_PREFIX + key) ?? 'null') as T | null
    } catch {
      return null
    }
  },
  set(key: string, value: unknown): void {
    localStorage.setItem(CACHE_PREFIX + key, JSON.stringify(value))
  },
  clear(): void {
    for (const key of Object.keys(localStorage)) if (key.startsWith(CACHE_PREFIX)) localStorage.removeItem(key)
  },
}

/** What the last user left in this browser profile: the cached answers and the outbox (their
 * unsent messages: the next user would see them as theirs, and send them under their name). */
async function forgetLastUser(): Promise<void> {
  offlineCache.clear()
  try {
    await outbox.clear()
  } catch {
    // no IndexedDB here (a private window may refuse it): then nothing was kept in it either
  }
}

export async function session(): Promise<Session | null> {
  let response: Response
  try {
    response = await fetch('auth/session', { credentials: 'same-origin' })
  } catch (err) {
    throw new Unreachable(String(err))
  }
  if (response.status === 401) {
    await forgetLastUser() // signed out: nothing of the last user stays behind
    return null
  }
  if (!response.ok) throw new Unreachable(`HTTP ${response.status}`)
  const found = (await response.json()) as Session
  const previous = offlineCache.get<Session>('session')
  if (previous && previous.user.id !== found.user.id) await forgetLastUser()
  offlineCache.set('session', found)
  return found
}

export async function listAll<T>(path: string): Promise<T[]> {
  const items: T[] = []
  let cursor: string | null = null
  do {
    const sep = path.includes('?') ? '&' : '?'
    const page: { items: T[]; next_cursor: string | null } = await api(
      'GET',
      path + sep + 'limit=200' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''),
    )
    items.push(...page.items)
    cursor = page.next_cursor
  } while (cursor)
  return items
}
