/** The machine and runtime a run is measured on, printed with every table. */
import { availableParallelism, arch, cpus, loadavg, platform, release, totalmem } from 'node:os'
import type { Machine } from './report.js'

export function describeMachine(): Machine {
  const cores = cpus()
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${platform()} ${release()}`,
    arch: arch(),
    cpu: cores[0]?.model.trim() || 'unknown CPU',
    cores: cores.length,
    availableParallelism: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadStart: loadavg()[0] ?? 0,
    loadEnd: 0,
  }
}

export function machineLine(m: Machine): string {
  return `Node ${m.node} (V8 ${m.v8}) on ${m.platform} ${m.arch}; ${m.cpu}, ${m.cores} cores (availableParallelism ${m.availableParallelism}), ${m.memoryGiB} GiB; load average ${m.loadStart.toFixed(2)} at start, ${m.loadEnd.toFixed(2)} at end`
}
