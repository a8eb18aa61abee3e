// Modal dialogs on <dialog>: Esc closes, focus returns where it was.
import { X } from 'lucide'
import { ApiError } from './api'
import { h, icon } from './dom'

export function openDialog(title: string, content: HTMLElement): HTMLDialogElement {
  const dialog = h(
    'dialog',
    { class: 'dialog', 'aria-label': title },
    h('header', { class: 'dialog-header' }, h('h2', {}, title), h('button', { class: 'icon-button', type: 'button', 'aria-label': 'Close', onclick: () => dialog.close() }, icon(X))),
    content,
  )
  const previous = document.activeElement as HTMLElement | null
  dialog.addEventListener('close', () => {
    dialog.remove()
    previous?.focus()
  })
  document.body.append(dialog)
  dialog.showModal()
  return dialog
}

export interface Field {
  name: string
  label: string
  placeholder?: string
  required?: boolean
  value?: string
  options?: [string, string][] // a select: [value, label]
}

export function formDialog(
  title: string,
  fields: Field[],
  submit: string,
  action: (values: Record<string, string>) => Promise<void>,
): HTMLDialogElement {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true })
  const inputs = fields.map((f) =>
    f.options
      ? h('select', { name: f.name, class: 'input', id: `field-${f.name}` }, f.options.map(([v, l]) => h('option', { value: v, selected: v === f.value }, l)))
      : h('input', { name: f.name, class: 'input', id: `field-${f.name}`, placeholder: f.placeholder ?? '', required: f.required ?? false, value: f.value ?? '', autocomplete: 'off' }),
  )
  const button = h('button', { class: 'button primary', type: 'submit' }, submit)
  const form = h(
    'form',
    { class: 'form', method: 'dialog' },
    fields.map((f, i) => h('label', { class: 'field', for: `field-${f.name}` }, h('span', {}, f.label), inputs[i])),
    error,
    h('div', { class: 'actions' }, h('button', { class: 'button', type: 'button', onclick: () => dialog.close() }, 'Cancel'), button),
  )
  const dialog = openDialog(title, form)
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const values: Record<string, string> = {}
    fields.forEach((f, i) => (values[f.name] = (inputs[i] as HTMLInputElement).value))
    button.disabled = true
    try {
      await action(values)
      dialog.close()
    } catch (err) {
      error.hidden = false
      error.textContent = err instanceof ApiError ? err.message : 'Could not reach the server. Try again.'
    } finally {
      button.disabled = false
    }
  })
  ;((inputs[0] as HTMLElement | undefined) ?? button).focus()
  return dialog
}
