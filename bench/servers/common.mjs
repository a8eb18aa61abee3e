// Shared command-line parsing for the node anchor servers: --port P [--deflate] [--data PATH].
import { parseArgs } from 'node:util'

export const serverArgs = () => {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      deflate: { type: 'boolean', default: false },
      data: { type: 'string' }
    }
  })
  if (!values.port) {
    process.stderr.write('usage: --port P [--deflate] [--data PATH]\n')
    process.exit(2)
  }
  return { port: Number(values.port), deflate: values.deflate, data: values.data }
}

export const HOST = '127.0.0.1'
