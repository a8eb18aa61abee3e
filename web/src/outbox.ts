// Messages written but not yet accepted by the server, kept in IndexedDB so they survive a
// reload or a dead connection. They go out in the order written, one at a time, each with its
// client id: the server's idempotency by (author, client id) makes a retry after an unknown
// outcome (a cut connection) post it exactly once.
export interface Pending {
  client_id: string
  room: string
  text: string
  thread: string | null
  created: number // Date.now(): the order they go out in
  failed: string | null // the server refused it (shown with "retry"); null: still sending
}

const DB = 'collab-outbox'
const STORE = 'pending'

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1)
    request.onupgradeneeded = () => {
      const store = request.result.createObjectStore(STORE, { keyPath: 'client_id' })
      store.createIndex('room', 'room')
    }
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

let db: Promise<IDBDatabase> | null = null
function database(): Promise<IDBDatabase> {
  db ??= open()
  return db
}

async function run<T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const store = (await database()).transaction(STORE, mode).objectStore(STORE)
  return new Promise((resolve, reject) => {
    const request = fn(store)
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

export const outbox = {
  put: (item: Pending) => run('readwrite', (s) => s.put(item)),
  remove: (clientId: string) => run('readwrite', (s) => s.delete(clientId)),
  /** Forget everything (signed out, or another user signed in: it is not theirs to see or send). */
  clear: () => run('readwrite', (s) => s.clear()),
  async list(room: string): Promise<Pending[]> {
    const items = await run<Pending[]>('readonly', (s) => s.index('room').getAll(room))
    return items.sort((a, b) => a.created - b.created)
  },
}

export function newClientId(): string {
  return crypto.randomUUID()
}
