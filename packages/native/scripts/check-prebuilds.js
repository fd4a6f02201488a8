#!/usr/bin/env node
'use strict'

// Checks that prebuilds/ holds one binary per published target, each made for its machine (read
// from the file's own header: ELF e_machine, PE Machine), so that a publish cannot ship a missing
// or mislabelled binary. Runs before `npm publish` (prepublishOnly) and from the tarball test.
//
//   node scripts/check-prebuilds.js [dir]     exit 1 with a list of problems

const fs = require('fs')
const path = require('path')

const { PREBUILD_FILES } = require('../load')

const MACHINES = { 'linux-x64': 'elf-x86-64', 'linux-arm64': 'elf-aarch64', 'win32-x64': 'pe-x86-64' }
const EXPECTED = Object.fromEntries(
  Object.entries(PREBUILD_FILES).map(([target, file]) => [`${target}/${file}`, MACHINES[target]]),
)

/** 'elf-x86-64' | 'elf-aarch64' | 'pe-x86-64' | a description of what else the bytes are. */
function machineOf (file) {
  const b = fs.readFileSync(file)
  if (b.length > 20 && b.readUInt32BE(0) === 0x7f454c46) {
    const machine = b.readUInt16LE(18) // little-endian ELF on both targets
    return { 0x3e: 'elf-x86-64', 0xb7: 'elf-aarch64' }[machine] || `elf-machine-0x${machine.toString(16)}`
  }
  if (b.length > 64 && b.toString('latin1', 0, 2) === 'MZ') {
    const pe = b.readUInt32LE(0x3c)
    if (b.toString('latin1', pe, pe + 4) === 'PE\0\0') {
      const machine = b.readUInt16LE(pe + 4)
      return machine === 0x8664 ? 'pe-x86-64' : `pe-machine-0x${machine.toString(16)}`
    }
  }
  return 'not a shared library'
}

/** Problems with `dir` (a package's prebuilds/), as sentences; [] when every target is right. */
function checkPrebuilds (dir) {
  const problems = []
  for (const [rel, machine] of Object.entries(EXPECTED)) {
    const file = path.join(dir, rel)
    if (!fs.existsSync(file)) problems.push(`missing prebuilds/${rel} (make it with \`pnpm prebuilds ${rel.split('/')[0]}\`)`)
    else if (machineOf(file) !== machine) problems.push(`prebuilds/${rel} is ${machineOf(file)}, expected ${machine}`)
  }
  return problems
}

module.exports = { checkPrebuilds, machineOf, EXPECTED }

if (require.main === module) {
  const dir = process.argv[2] || path.join(__dirname, '..', 'prebuilds')
  const problems = checkPrebuilds(dir)
  for (const p of problems) process.stderr.write(`@iocp/native: ${p}\n`)
  if (problems.length > 0) process.exit(1)
  process.stderr.write(`@iocp/native: prebuilds complete (${Object.keys(EXPECTED).join(', ')})\n`)
}
