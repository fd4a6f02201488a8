/** Every scenario, in the order they run. */
import type { Scenario } from '../scenario.js'
import { fanout } from './fanout.bench.js'
import { io } from './io.bench.js'
import { memory } from './memory.bench.js'
import { pingpong } from './pingpong.bench.js'
import { pool } from './pool.bench.js'
import { redis } from './redis.bench.js'
import { single } from './single.bench.js'

export const scenarios: readonly Scenario[] = [single, fanout, pingpong, pool, memory, redis, io]
