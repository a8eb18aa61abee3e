// The service worker: keeps the app shell (index.html and the hashed assets) so the workspace
// opens offline; the API and sockets always go to the network.
declare const SHELL_VERSION: string
declare const SHELL_ASSETS: string[]
const sw = self as unknown as ServiceWorkerGlobalScope
const CACHE = 'collab-shell-' + SHELL_VERSION
const scope = new URL(sw.registration.scope)

sw.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(['./', ...SHELL_ASSETS]))
      .then(() => sw.skipWaiting()),
  )
})

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('collab-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  )
})

sw.addEventListener('fetch', (event) => {
  const request = event.request
  const url = new URL(request.url)
  if (request.method !== 'GET' || url.origin !== scope.origin) return
  const path = url.pathname.slice(scope.pathname.length)
  if (path.startsWith('assets/')) {
    event.respondWith(caches.match(request).then((hit) => hit ?? fetch(request)))
  } else if (request.mode === 'navigate') {
    // The network first (a new bundle, a login redirect), the cached shell when it fails.
    event.respondWith(
      fetch(request).catch(() => caches.match('./').then((hit) => hit ?? Response.error())),
    )
  }
})
