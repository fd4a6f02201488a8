#!/usr/bin/env node
// Writes dist/**/*.d.cts beside tsc's dist/**/*.d.ts: the same declarations, as CommonJS-format
// type files, for the "require" condition of package.json's exports.
//
// Why: @iocp/core is ESM only and works from require() through Node's require(esm) (every Node
// in `engines` has it unflagged), but TypeScript under `module: node16` refuses to type a
// `require`-style import of an ES module (TS1479), even where Node would load it. The "require"
// condition therefore points TypeScript at these .d.cts files; at run time it still loads the one
// ES module, so there is a single copy of the package's state either way. Relative specifiers are
// rewritten from .js to .cjs (which TypeScript maps to the .d.cts); source map comments are dropped
// (the maps describe the .d.ts files).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const dist = fileURLToPath(new URL('../dist', import.meta.url))

function* declarations(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = join(dir, entry.name)
    if (entry.isDirectory()) yield* declarations(file)
    else if (entry.name.endsWith('.d.ts')) yield file
  }
}

let count = 0
for (const file of declarations(dist)) {
  const text = readFileSync(file, 'utf8')
    .replace(/^\/\/# sourceMappingURL=.*$/m, '')
    .replace(/((?:from|import)\s*\(?\s*['"])(\.\.?\/[^'"]*?)\.js(['"])/g, '$1$2.cjs$3')
  writeFileSync(file.replace(/\.d\.ts$/, '.d.cts'), text)
  count++
}
if (count === 0) {
  console.error('cjs-types: no .d.ts under dist/: run tsc -b first')
  process.exit(1)
}
