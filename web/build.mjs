// Bundle the workspace: web/src -> OUT (collab/web/dist by default), with hashed asset names.
//
//   node web/build.mjs [--out DIR] [--source-hash HASH] [--dev]
//
// OUT gets index.html (the shell, asset names filled in), sw.js (the service worker: a fixed
// name, since browsers look it up by URL), assets/main-HASH.js and assets/main-HASH.css, and
// manifest.json last: the server reads it to know the asset names and whether the bundle was
// built from the sources it sits beside (`source_hash`, computed by collab/web/bundle.py,
// which is also what calls this script).
import * as esbuild from 'esbuild'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const option = (name, fallback) => {
  const at = args.indexOf(name)
  return at >= 0 ? args[at + 1] : fallback
}
const out = option('--out', join(here, '..', 'collab', 'web', 'dist'))
const sourceHash = option('--source-hash', '')
const dev = args.includes('--dev')

rmSync(out, { recursive: true, force: true })
mkdirSync(join(out, 'assets'), { recursive: true })

const result = await esbuild.build({
  entryPoints: { main: join(here, 'src', 'main.ts') },
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: !dev,
  sourcemap: false,
  outdir: join(out, 'assets'),
  splitting: true, // the editors load when a document opens, not with the shell
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
})

const assets = {}
const outputs = []
for (const file of Object.keys(result.metafile.outputs)) {
  const name = relative(out, file).split('\\').join('/')
  outputs.push(name)
  if (name.startsWith('assets/main-') && name.endsWith('.js')) assets['main.js'] = name
  else if (name.endsWith('.css')) assets['main.css'] = name
}
if (!assets['main.js'] || !assets['main.css']) throw new Error('esbuild emitted no js or css')

// The service worker keeps the shell for offline use; its cache name changes with the bundle.
const version = createHash('sha256')
  .update(outputs.sort().join('\n'))
  .digest('hex')
  .slice(0, 16)
const sw = await esbuild.build({
  entryPoints: [join(here, 'src', 'sw.ts')],
  bundle: true,
  format: 'iife',
  minify: !dev,
  write: false,
  define: {
    SHELL_VERSION: JSON.stringify(version),
    SHELL_ASSETS: JSON.stringify(outputs),
  },
  logLevel: 'warning',
})
writeFileSync(join(out, 'sw.js'), sw.outputFiles[0].contents)

const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('{{main.js}}', assets['main.js'])
  .replace('{{main.css}}', assets['main.css'])
writeFileSync(join(out, 'index.html'), html)

const files = readdirSync(join(out, 'assets')).map((f) => 'assets/' + f)
const manifest = { source_hash: sourceHash, version, assets, files: [...files, 'sw.js'] }
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
console.log(`built ${files.join(', ')} into ${out}`)
