// Whole-page states: login, and the clear pages for "not a member", "link expired" and
// "server unreachable" (each says what happened and what to do next).
import { CloudOff, KeyRound, Link2Off, LogIn, ShieldX } from 'lucide'
import { clear, h, icon } from './dom'
import type { IconNode } from 'lucide'

function card(iconNode: IconNode, title: string, ...body: (Node | string | null)[]): HTMLElement {
  return h(
    'main',
    { class: 'center-page' },
    h('section', { class: 'card', 'aria-labelledby': 'page-title' }, h('div', { class: 'card-icon' }, icon(iconNode)), h('h1', { id: 'page-title' }, title), ...body),
  )
}

export function loginPage(root: HTMLElement, devMode: boolean, next: string): void {
  const target = 'login' + (next && next !== '/' ? '?next=' + encodeURIComponent(next) : '')
  const body = devMode
    ? [
        h('p', {}, 'This server runs in dev mode: no identity provider is configured, so it lets in whoever holds its login token.'),
        h('p', {}, 'Open the login URL that ', h('code', {}, 'collab serve'), ' printed in its terminal (it ends in ', h('code', {}, '/login?token=…'), ').'),
      ]
    : [
        h('p', {}, 'Sign in with your organisation’s account to see your rooms.'),
        h('a', { class: 'button primary large', href: target, id: 'login-button' }, icon(LogIn), ' Sign in'),
      ]
  clear(root, card(devMode ? KeyRound : LogIn, 'Welcome to collab', ...body))
}

export function notMemberPage(root: HTMLElement, room: string): void {
  clear(
    root,
    card(
      ShieldX,
      'You are not a member of this room',
      h('p', {}, 'The room ', h('code', {}, room), ' does not exist, or you have not been invited to it.'),
      h('p', { class: 'muted' }, 'Ask one of its owners for an invite link.'),
      h('a', { class: 'button', href: './' }, 'Go to my rooms'),
    ),
  )
}

export function linkExpiredPage(root: HTMLElement): void {
  clear(
    root,
    card(
      Link2Off,
      'This invite link has expired',
      h('p', {}, 'Invite links work once and for a limited time. This one was already used, revoked or is too old.'),
      h('p', { class: 'muted' }, 'Ask the person who sent it for a new link.'),
      h('a', { class: 'button', href: './' }, 'Go to my rooms'),
    ),
  )
}

/** The server cannot be reached: retry with a countdown, and at once on "Retry now". */
export function unreachablePage(root: HTMLElement, retry: () => void, attempt: number): () => void {
  const delay = Math.min(2 ** attempt, 30)
  let left = delay
  const countdown = h('span', { class: 'countdown' }, String(left))
  const timer = window.setInterval(() => {
    left -= 1
    countdown.textContent = String(Math.max(left, 0))
    if (left <= 0) {
      window.clearInterval(timer)
      retry()
    }
  }, 1000)
  clear(
    root,
    card(
      CloudOff,
      'Cannot reach the server',
      h('p', {}, 'collab is not answering: the server may be restarting, or your connection is down.'),
      h('p', { class: 'muted', role: 'status' }, 'Trying again in ', countdown, ' s.'),
      h('button', { class: 'button primary', type: 'button', onclick: () => (window.clearInterval(timer), retry()) }, 'Retry now'),
    ),
  )
  return () => window.clearInterval(timer)
}
