// @hocuspocus/server 4.7.0 + @hocuspocus/extension-sqlite 4.7.0, debounce 2 s (max 10 s), the
// library defaults. SIGTERM runs its own graceful shutdown (stopOnSignals), which flushes
// pending stores.
//
//   node hocuspocus.mjs --port P --data FILE.sqlite [--deflate]
import { Server } from '@hocuspocus/server'
import { SQLite } from '@hocuspocus/extension-sqlite'
import { HOST, serverArgs } from './common.mjs'

const { port, deflate, data } = serverArgs()
const server = new Server({
  address: HOST,
  port,
  quiet: true,
  debounce: 2000,
  maxDebounce: 10000,
  websocketOptions: { perMessageDeflate: deflate },
  extensions: [new SQLite({ database: data || ':memory:' })]
})
await server.listen()
console.log(`hocuspocus on ${HOST}:${port} deflate=${deflate}`)
