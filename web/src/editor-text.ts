// Plain text and markdown: CodeMirror 6 bound to the doc's Y.Text "text" (y-codemirror.next),
// remote cursors with names from awareness; read-only through a compartment, switchable live.
import { EditorState, Compartment } from '@codemirror/state'
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection } from '@codemirror/view'
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import { markdown } from '@codemirror/lang-markdown'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import type { DocLink } from './connection'

export interface Editor {
  setReadOnly(readOnly: boolean): void
  destroy(): void
}

export function textEditor(parent: HTMLElement, link: DocLink, readOnly: boolean): Editor {
  const ytext = link.doc.getText('text') // the name pycrdt peers and tests read too
  const mode = new Compartment()
  const editable = (ro: boolean) => [EditorState.readOnly.of(ro), EditorView.editable.of(!ro)]
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        lineNumbers(),
        drawSelection(),
        highlightActiveLine(),
        EditorView.lineWrapping,
        markdown(),
        keymap.of([...yUndoManagerKeymap, ...defaultKeymap, indentWithTab]),
        mode.of(editable(readOnly)),
        yCollab(ytext, link.provider.awareness),
        EditorView.contentAttributes.of({ 'aria-label': 'Document text' }),
        // CodeMirror mounts its theme as a <style> element: the CSP lets it in with this nonce.
        EditorView.cspNonce.of(document.querySelector<HTMLMetaElement>('meta[name=csp-nonce]')?.content ?? ''),
      ],
    }),
  })
  return {
    setReadOnly(ro: boolean) {
      view.dispatch({ effects: mode.reconfigure(editable(ro)) })
    },
    destroy() {
      view.destroy()
    },
  }
}
