'use strict'

// Reads one target of binding.gyp for a given OS, so that the cross builds (scripts/prebuild.js)
// compile exactly what node-gyp compiles: binding.gyp stays the one list of sources, defines,
// flags and per-platform libraries. Only the subset of gyp that binding.gyp uses is understood
// (plain keys, `conditions` on OS=="..."/OS!="...", `<!(command)` expansion); anything else
// is an error, so that a new gyp feature cannot be silently ignored by the cross builds.

const fs = require('fs')
const path = require('path')
const { execSync } = require('child_process')

// node's platform names -> gyp's OS names
const GYP_OS = { linux: 'linux', win32: 'win', darwin: 'mac', freebsd: 'freebsd', openbsd: 'openbsd' }

const LIST_KEYS = ['sources', 'defines', 'include_dirs', 'cflags', 'cflags_cc', 'ldflags', 'libraries']
// Keys that only concern node-gyp's own generators (make, MSVS, Xcode) or its defaults.
const IGNORED_KEYS = new Set([
  'target_name', 'type', 'cflags!', 'cflags_cc!', 'ldflags!', 'xcode_settings', 'msvs_settings',
  'configurations', 'conditions',
])

/** binding.gyp is a Python literal; ours is JSON plus `#` comments and trailing commas. */
function readGyp (file) {
  const text = fs.readFileSync(file, 'utf8')
    .replace(/^\s*#.*$/gm, '')
    .replace(/,(\s*[\]}])/g, '$1')
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new Error(`${file}: only JSON-shaped gyp (double quotes, # comments) is understood: ${error.message}`)
  }
}

function conditionHolds (expr, os) {
  const m = /^\s*OS\s*(==|!=)\s*["']([a-z]+)["']\s*$/.exec(expr)
  if (!m) throw new Error(`binding.gyp condition ${JSON.stringify(expr)}: only OS=="x" / OS!="x" is understood`)
  return (m[2] === os) === (m[1] === '==')
}

function merge (into, block, os) {
  for (const [key, value] of Object.entries(block)) {
    if (LIST_KEYS.includes(key)) into[key].push(...value)
    else if (!IGNORED_KEYS.has(key)) throw new Error(`binding.gyp key "${key}" is not understood by scripts/gyp-target.js`)
  }
  for (const condition of block.conditions || []) {
    const [expr, then, otherwise] = condition
    const chosen = conditionHolds(expr, os) ? then : otherwise
    if (chosen) merge(into, chosen, os)
  }
}

/** `<!(cmd)` in gyp is the command's output, run in the .gyp file's directory. */
function expand (value, cwd) {
  const m = /^<!\((.*)\)$/.exec(value)
  if (!m) return value
  return execSync(m[1], { cwd, encoding: 'utf8' }).trim()
}

/**
 * The settings of `targetName` in `gypFile` for `platform` (node's name: linux, win32, darwin).
 * Paths in `sources` and `include_dirs` come back absolute.
 */
function gypTarget (gypFile, targetName, platform) {
  const os = GYP_OS[platform]
  if (!os) throw new Error(`no gyp OS name for platform ${platform}`)
  const gyp = readGyp(gypFile)
  const target = (gyp.targets || []).find((t) => t.target_name === targetName)
  if (!target) throw new Error(`${gypFile} has no target ${targetName}`)
  const dir = path.dirname(gypFile)
  const out = Object.fromEntries(LIST_KEYS.map((k) => [k, []]))
  merge(out, target, os)
  out.sources = out.sources.map((s) => path.resolve(dir, s))
  out.include_dirs = out.include_dirs.map((d) => path.resolve(dir, expand(d, dir)))
  return out
}

module.exports = { gypTarget }
