// Rich text: Tiptap 3 bound to the doc's XML fragment "default" (Collaboration), remote carets
// with names (CollaborationCaret). StarterKit's own undo is off: Yjs undo only.
import { Editor as Tiptap } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import type { DocLink } from './connection'
import type { Editor } from './editor-text'

type CaretUser = { name?: string; color?: string }

function caret(user: CaretUser): HTMLElement {
  const el = document.createElement('span')
  el.classList.add('collaboration-carets__caret')
  el.style.borderColor = user.color ?? '#888' // CSSOM: allowed without 'unsafe-inline'
  const label = document.createElement('div')
  label.classList.add('collaboration-carets__label')
  label.style.backgroundColor = user.color ?? '#888'
  label.textContent = user.name ?? 'Someone'
  el.append(label)
  return el
}

export function richEditor(
  parent: HTMLElement,
  link: DocLink,
  readOnly: boolean,
  user: { name: string; color: string },
): Editor {
  const editor = new Tiptap({
    element: parent,
    injectCSS: false, // its CSS is in our stylesheet: no <style> element (CSP)
    editable: !readOnly,
    extensions: [
      StarterKit.configure({ undoRedo: false }),
      Collaboration.configure({ document: link.doc, field: 'default' }),
      CollaborationCaret.configure({ provider: link.provider, user, render: caret }),
    ],
    editorProps: { attributes: { 'aria-label': 'Document text', class: 'rich-content' } },
  })
  return {
    setReadOnly(ro: boolean) {
      editor.setEditable(!ro)
    },
    destroy() {
      editor.destroy()
    },
  }
}
