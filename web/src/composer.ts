// The message box: grows with its text, Enter sends, Shift+Enter breaks a line, Up (when empty)
// edits my last message, Esc asks to close; `@` opens member autocomplete; while I type, the
// chat doc's awareness says so (`typing`: true, or the thread's id), refreshed at most once a
// second and cleared after 3 s idle or on send (the server clears it after 5 s anyway).
import { SendHorizontal } from 'lucide'
import type { Awareness } from 'y-protocols/awareness'
import type { Member } from './chat-model'
import { clear, h, icon } from './dom'

export interface ComposerOptions {
  label: string
  placeholder: string
  thread: string | null
  awareness: Awareness
  members: () => Member[]
  onSend: (text: string) => void
  onEditLast?: () => void
  onEscape?: () => void
}

const MENTION = /(^|\s)@([a-z0-9._-]*)$/i
const SPECIAL: Member[] = [{ user_id: '@room', name: 'Everyone in this room', handle: 'room', role: '' }]

export class Composer {
  readonly el: HTMLElement
  readonly input: HTMLTextAreaElement
  private button: HTMLButtonElement
  private popup = h('ul', { class: 'mention-popup', role: 'listbox', 'aria-label': 'Members', hidden: true })
  private choices: Member[] = []
  private selected = 0
  private lastRefresh = 0
  private idle = 0

  constructor(private options: ComposerOptions) {
    this.input = h('textarea', {
      class: 'composer-input',
      rows: '1',
      'aria-label': options.label,
      placeholder: options.placeholder,
      title: 'Enter sends, Shift+Enter breaks a line, Up edits your last message',
      'aria-autocomplete': 'list',
      onkeydown: (e: Event) => this.onKey(e as KeyboardEvent),
      oninput: () => this.onInput(),
      onblur: () => window.setTimeout(() => this.closePopup(), 150),
    })
    this.button = h('button', { class: 'icon-button primary', type: 'submit', 'aria-label': 'Send' }, icon(SendHorizontal))
    this.el = h(
      'form',
      { class: 'composer', onsubmit: (e: Event) => (e.preventDefault(), this.send()) },
      this.popup,
      this.input,
      this.button,
    )
  }

  set disabled(value: boolean) {
    this.input.disabled = value
    this.button.disabled = value
  }

  focus(): void {
    this.input.focus()
  }

  destroy(): void {
    this.stopTyping()
  }

  private grow(): void {
    this.input.style.height = 'auto'
    this.input.style.height = Math.min(this.input.scrollHeight, 200) + 'px'
  }

  private send(): void {
    const text = this.input.value.trim()
    if (!text || this.input.disabled) return
    this.input.value = ''
    this.grow()
    this.closePopup()
    this.stopTyping()
    this.options.onSend(text)
  }

  private onKey(event: KeyboardEvent): void {
    if (!this.popup.hidden && this.choices.length) {
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        const step = event.key === 'ArrowDown' ? 1 : -1
        this.selected = (this.selected + step + this.choices.length) % this.choices.length
        this.renderPopup()
        event.preventDefault()
        return
      }
      if (event.key === 'Enter' || event.key === 'Tab') {
        this.pick(this.choices[this.selected])
        event.preventDefault()
        return
      }
      if (event.key === 'Escape') {
        this.closePopup()
        event.preventDefault()
        event.stopPropagation()
        return
      }
    }
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault()
      this.send()
    } else if (event.key === 'ArrowUp' && this.input.value === '' && this.options.onEditLast) {
      event.preventDefault()
      this.options.onEditLast()
    } else if (event.key === 'Escape' && this.options.onEscape) {
      event.preventDefault()
      event.stopPropagation()
      this.options.onEscape()
    }
  }

  private onInput(): void {
    this.grow()
    this.typing()
    const before = this.input.value.slice(0, this.input.selectionStart ?? this.input.value.length)
    const match = MENTION.exec(before)
    if (!match) return this.closePopup()
    const query = match[2].toLowerCase()
    this.choices = [...this.options.members(), ...SPECIAL]
      .filter((m) => m.handle && (m.handle.toLowerCase().startsWith(query) || m.name.toLowerCase().startsWith(query)))
      .slice(0, 8)
    this.selected = 0
    if (!this.choices.length) return this.closePopup()
    this.popup.hidden = false
    this.renderPopup()
  }

  private renderPopup(): void {
    clear(
      this.popup,
      this.choices.map((m, i) =>
        h(
          'li',
          {
            role: 'option',
            class: i === this.selected ? 'selected' : '',
            'aria-selected': i === this.selected ? 'true' : 'false',
            'data-handle': m.handle,
            onmousedown: (e: Event) => (e.preventDefault(), this.pick(m)),
          },
          h('strong', {}, '@' + m.handle),
          ' ',
          h('span', { class: 'muted' }, m.name),
        ),
      ),
    )
  }

  private pick(member: Member): void {
    const caret = this.input.selectionStart ?? this.input.value.length
    const before = this.input.value.slice(0, caret).replace(/@[a-z0-9._-]*$/i, '@' + member.handle + ' ')
    this.input.value = before + this.input.value.slice(caret)
    this.input.setSelectionRange(before.length, before.length)
    this.closePopup()
    this.input.focus()
  }

  private closePopup(): void {
    this.popup.hidden = true
    this.choices = []
  }

  private typing(): void {
    if (this.input.value.trim() === '') return this.stopTyping()
    const now = Date.now()
    if (now - this.lastRefresh > 1000) {
      this.options.awareness.setLocalStateField('typing', this.options.thread ?? true)
      this.lastRefresh = now
    }
    clearTimeout(this.idle)
    this.idle = window.setTimeout(() => this.stopTyping(), 3000)
  }

  private stopTyping(): void {
    clearTimeout(this.idle)
    if (this.lastRefresh !== 0) this.options.awareness.setLocalStateField('typing', false)
    this.lastRefresh = 0
  }
}

/** "Ann is typing…" from the chat doc's awareness: others only, each person once. */
export function typingLine(awareness: Awareness, myId: string, thread: string | null): string {
  const names = new Map<string, string>()
  awareness.getStates().forEach((state: any, clientId: number) => {
    if (clientId === awareness.clientID || !state?.typing || !state.user?.id || state.user.id === myId) return
    const where = typeof state.typing === 'string' ? state.typing : null
    if (where === thread) names.set(state.user.id, state.user.name || state.user.handle || 'Someone')
  })
  const list = [...names.values()]
  if (list.length === 0) return ''
  if (list.length === 1) return `${list[0]} is typing…`
  if (list.length === 2) return `${list[0]} and ${list[1]} are typing…`
  return 'Several people are typing…'
}
