// Tiny DOM helpers: no framework, no innerHTML (text is always set as text, never parsed).
import { createElement, type IconNode } from 'lucide'

type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>
type Child = Node | string | null | undefined | false

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value as EventListener)
    } else if (value === true) {
      el.setAttribute(key, '')
    } else {
      el.setAttribute(key, String(value))
    }
  }
  append(el, children)
  return el
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(typeof child === 'string' ? document.createTextNode(child) : child)
  }
}

export function clear(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren()
  append(el, children)
}

export function icon(node: IconNode, label?: string): SVGElement {
  const svg = createElement(node, { width: 16, height: 16, 'stroke-width': 2 })
  svg.setAttribute('class', 'icon')
  if (label) {
    svg.setAttribute('role', 'img')
    svg.setAttribute('aria-label', label)
  } else {
    svg.setAttribute('aria-hidden', 'true')
  }
  return svg
}

/** A user's colour: stable per user id, readable on both themes. */
export function colourOf(id: string): string {
  let hash = 0
  for (const ch of id) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0
  return `hsl(${hash % 360} 65% 45%)`
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean)
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] ?? '?').slice(0, 2)
  return letters.toUpperCase()
}

export function avatar(id: string, name: string, size = 'md'): HTMLElement {
  const el = h('span', { class: `avatar avatar-${size}`, title: name, 'aria-hidden': 'true' }, initials(name))
  el.style.backgroundColor = colourOf(id) // CSSOM, not a style attribute: allowed by the CSP
  return el
}

export function announce(text: string): void {
  const region = document.getElementById('announcer')
  if (region) region.textContent = text
}

export function relativeTime(seconds: number): string {
  const diff = Date.now() / 1000 - seconds
  if (diff < 45) return 'now'
  if (diff < 3600) return `${Math.round(diff / 60)} min`
  const date = new Date(seconds * 1000)
  if (diff < 86400 && new Date().getDate() === date.getDate()) {
    return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
  }
  return date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
}

export function absoluteTime(seconds: number): string {
  return new Date(seconds * 1000).toLocaleString()
}
