// The workspace's entry: who am I (or the login page), then the shell and the route.
import './styles.css'
import { offlineCache, session, Unreachable, type Session } from './api'
import { linkExpiredPage, loginPage, unreachablePage } from './pages'
import { Shell } from './shell'
import { initTheme } from './theme'

const root = document.getElementById('app') as HTMLElement
let attempts = 0
let stopCountdown: (() => void) | null = null

export function route(): string {
  const base = new URL(document.baseURI).pathname
  const path = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : ''
  return decodeURIComponent(path)
}

async function boot(): Promise<void> {
  stopCountdown?.()
  let me: Session | null
  try {
    me = await session()
  } catch (err) {
    if (!(err instanceof Unreachable)) throw err
    root.removeAttribute('aria-busy')
    const known = offlineCache.get<Session>('session')
    if (known !== null) {
      // Offline with a known user: open the workspace from what was cached (the outbox
      // included); its sockets retry, and the banner counts down.
      await new Shell(root, known).start()
      return
    }
    stopCountdown = unreachablePage(root, () => void boot(), attempts++)
    return
  }
  attempts = 0
  root.removeAttribute('aria-busy')
  if (me === null) {
    const path = route()
    loginPage(root, false, '/' + path)
    return
  }
  const shell = new Shell(root, me)
  await shell.start()
}

if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('sw.js').catch(() => {}) // offline shell: nice to have
}
initTheme()
void boot()
export { linkExpiredPage, loginPage }
