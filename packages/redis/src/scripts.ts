/**
 * The Lua scripts that make a batch atomic on the server. All are loaded with ioredis'
 * `defineCommand` (EVALSHA, falling back to EVAL after a restart that emptied the script cache).
 *
 * Keys other than `KEYS[1]` are passed in ARGV: a Redis Cluster would need every key of one
 * prefix in one slot (see docs/scale-out.md: a single Redis or a primary with replicas).
 */
import type { Redis } from 'ioredis'

/**
 * Lua: `room(n)`, how many of `n` new entries fit: all of them when `ARGV[2]` (the capacity) is
 * `-1`; else the capacity less the entries not yet acknowledged (the group `ARGV[1]`'s lag plus
 * its pending entries; the stream's length before any forwarder made the group).
 */
const ROOM = `
local function room(n)
  local cap = tonumber(ARGV[2])
  if cap < 0 then return n end
  local used = redis.call('XLEN', KEYS[1])
  if used > 0 then
    local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
    if ok then
      for _, g in ipairs(groups) do
        local f = {}
        for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
        if f['name'] == ARGV[1] and f['lag'] then used = f['pending'] + f['lag'] end
      end
    end
  end
  local r = cap - used
  if r > n then r = n end
  if r < 0 then r = 0 end
  return r
end
`

/**
 * `post(stream, group, capacity, fieldsPerEntry, ...fields)`: XADD each entry while the entries
 * not yet acknowledged stay within `capacity` (`-1`: no limit; see `ROOM`). Returns the ids
 * added, in order; the entries past capacity are not added.
 */
const POST = `${ROOM}
local nf = tonumber(ARGV[3])
local n = (#ARGV - 3) / nf
local ids = {}
for e = 0, room(n) - 1 do
  local base = 4 + e * nf
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', unpack(ARGV, base, base + nf - 1))
end
return ids
`

/**
 * `postFrames(stream, group, capacity, count, field, frames)`: like `post` for entries of one
 * field: `frames` is one binary argument, `count` frames back to back, each a `u32` length
 * (little-endian) and its bytes; each becomes an entry `field frame`. Returns how many were
 * added (the first ones, in order). (One argument for the whole batch: two per entry, and an id
 * back for each, cost the client more than the rest of posting.)
 */
const POST_FRAMES = `${ROOM}
local field, blob = ARGV[4], ARGV[5]
local pos = 1
local added = room(tonumber(ARGV[3]))
for e = 1, added do
  local frame
  frame, pos = struct.unpack('<I4c0', blob, pos)
  redis.call('XADD', KEYS[1], '*', field, frame)
end
return added
`

/** Arguments of a postFrames call (after the stream): `frames` back to back, each length first. */
export function postFramesArgs(group: string, capacity: number, field: string, frames: readonly Buffer[]): Array<string | number | Buffer> {
  let size = 0
  for (const f of frames) size += 4 + f.length
  const blob = Buffer.allocUnsafe(size)
  let at = 0
  for (const f of frames) {
    at = blob.writeUInt32LE(f.length, at)
    at += f.copy(blob, at)
  }
  return [group, capacity, frames.length, field, blob]
}

/**
 * `settle(stream, group, consumer, lowId, highId, entries, nkeys, ...replyKeys, ...commandArgs)`:
 * for each entry still held by `consumer` (its pending entry, not reclaimed by another consumer
 * since: one XPENDING of `consumer`'s entries between the batch's lowest and highest id answers
 * that for the whole batch, instead of a call per entry), XACK it, queue its reply frame and run
 * its commands (a requeue, a dead-letter XADD, an idempotent result...), all in one atomic step:
 * an entry is acknowledged if and only if its outcome was written. An entry that another consumer
 * has taken over is left alone, reply and commands included (that consumer will settle it).
 *
 * `entries` is one binary argument (built by {@link settleArgs}), per entry, little-endian:
 * `u16` id length, the id; `u16` reply key (1-based index into `replyKeys`, 0 = no reply);
 * `u32` reply frame length, the frame; `u16` how many commands it has. Its commands follow in
 * `commandArgs`, in entry order, each as `argc, ...args`. (One argument for the whole batch
 * instead of four or more per entry: building, sending and parsing those was most of a settle's
 * cost on both sides.)
 *
 * The entries are acknowledged by one XACK, and the reply frames of each reply stream go out as
 * one entry (field `b`, the frames back to back; NOMKSTREAM: a client that is gone gets nothing),
 * so a batch costs the server a few commands, not several per task. Then trims the stream below
 * its oldest entry still needed (the oldest pending one, else the group's last delivered one):
 * everything older was delivered and acknowledged. (XDEL per entry would cost several times more
 * than the whole rest of a task's work on the server.) Returns how many entries were left alone.
 */
const SETTLE = `
local stream, group, me = KEYS[1], ARGV[1], ARGV[2]
local LIMIT = 100000
local held = {}
local rows = redis.call('XPENDING', stream, group, ARGV[3], ARGV[4], LIMIT, me)
for _, row in ipairs(rows) do held[row[1]] = true end
local complete = #rows < LIMIT
local blob = ARGV[5]
local nkeys = tonumber(ARGV[6])
local ci = 7 + nkeys
local pos, skipped = 1, 0
local acks, replies, order = {}, {}, {}
while pos <= #blob do
  local id, k, frame, ncmd
  id, k, frame, ncmd, pos = struct.unpack('<Hc0HI4c0H', blob, pos)
  local mine = held[id] == true
  if not mine and not complete then
    local p = redis.call('XPENDING', stream, group, id, id, 1)
    mine = p[1] ~= nil and p[1][2] == me
  end
  if mine then
    acks[#acks + 1] = id
    if k > 0 then
      local list = replies[k]
      if not list then
        list = {}
        replies[k] = list
        order[#order + 1] = k
      end
      list[#list + 1] = frame
    end
  else
    skipped = skipped + 1
  end
  for c = 1, ncmd do
    local argc = tonumber(ARGV[ci])
    ci = ci + 1
    if mine then redis.call(unpack(ARGV, ci, ci + argc - 1)) end
    ci = ci + argc
  end
end
for a = 1, #acks, 1000 do
  redis.call('XACK', stream, group, unpack(acks, a, math.min(a + 999, #acks)))
end
for _, k in ipairs(order) do
  redis.call('XADD', ARGV[6 + k], 'NOMKSTREAM', '*', 'b', table.concat(replies[k]))
end
local summary = redis.call('XPENDING', stream, group)
local keep = summary[2]
if not keep then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f['name'] == group then keep = f['last-delivered-id'] end
  end
end
if keep then redis.call('XTRIM', stream, 'MINID', '~', keep) end
return skipped
`

/**
 * `renew(stream, group, consumer, ...ids)`: resets the idle time of each entry still pending for
 * `consumer` (XCLAIM to itself, JUSTID: the delivery count is untouched). An entry another
 * consumer took over meanwhile is not taken back. Returns how many were renewed.
 */
const RENEW = `
local stream, group, me = KEYS[1], ARGV[1], ARGV[2]
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', stream, group, ARGV[i], ARGV[i], 1)
  if p[1] ~= nil and p[1][2] == me then
    redis.call('XCLAIM', stream, group, me, 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
`

/**
 * `reap(stream, group, idleMs, self)`: deletes the group's consumers that hold nothing and have
 * been idle for `idleMs` (processes that ended), and `self` if it holds nothing (`''`: none).
 * Checked and deleted in one step, so no consumer is deleted with entries (XGROUP DELCONSUMER
 * would drop them from the pending list: they would never be delivered again).
 */
const REAP = `
local n = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and (f['idle'] >= tonumber(ARGV[2]) or f['name'] == ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    n = n + 1
  end
end
return n
`

/** A connection with the scripts defined. */
export interface ScriptedRedis extends Redis {
  iocpPost(stream: string, ...args: Array<string | number | Buffer>): Promise<string[]>
  iocpPostFrames(stream: string, ...args: Array<string | number | Buffer>): Promise<number>
  iocpSettle(stream: string, ...args: Array<string | number | Buffer>): Promise<number>
  iocpRenew(stream: string, ...args: Array<string | number>): Promise<number>
  iocpReap(stream: string, group: string, idleMs: number, self: string): Promise<number>
}

/** Defines the scripts on `client` (idempotent) and returns it typed. */
export function withScripts(client: Redis): ScriptedRedis {
  const c = client as ScriptedRedis
  if (typeof c.iocpPost !== 'function') {
    client.defineCommand('iocpPost', { numberOfKeys: 1, lua: POST })
    client.defineCommand('iocpPostFrames', { numberOfKeys: 1, lua: POST_FRAMES })
    client.defineCommand('iocpSettle', { numberOfKeys: 1, lua: SETTLE })
    client.defineCommand('iocpRenew', { numberOfKeys: 1, lua: RENEW })
    client.defineCommand('iocpReap', { numberOfKeys: 1, lua: REAP })
  }
  return c
}

/** Arguments of one entry of a settle batch: its commands, each an argv array. */
export type SettleCommands = ReadonlyArray<ReadonlyArray<string | number | Buffer>>

/** A reply frame for one client's reply stream (see frame.ts). */
export interface SettleReply {
  readonly key: Buffer
  readonly frame: Buffer
}

/** One entry of a settle batch: its id, its reply (if any) and its commands. */
export interface SettleEntry {
  readonly id: string
  readonly reply: SettleReply | undefined
  readonly commands: SettleCommands
}

/**
 * The arguments of a settle call (after the stream) for `batch`, in the layout the script reads.
 * Every id must be a stream id (`ms-seq`).
 */
export function settleArgs(group: string, consumer: string, batch: readonly SettleEntry[]): Array<string | number | Buffer> {
  let low = batch[0]!.id
  let high = low
  const keys: Buffer[] = []
  const keyIndex = new Map<string, number>()
  let lastKey: Buffer | undefined
  let lastK = 0
  const index: number[] = []
  let size = 0
  const commandArgs: Array<string | number | Buffer> = []
  for (const { id, reply, commands } of batch) {
    if (compareIds(id, low) < 0) low = id
    else if (compareIds(id, high) > 0) high = id
    let k = 0
    if (reply) {
      // Most batches answer one client or a few: the previous entry's key first.
      if (lastKey !== undefined && (lastKey === reply.key || lastKey.equals(reply.key))) k = lastK
      else {
        const name = reply.key.toString('latin1')
        k = keyIndex.get(name) ?? 0
        if (k === 0) {
          keys.push(reply.key)
          k = keys.length
          keyIndex.set(name, k)
        }
        lastKey = reply.key
        lastK = k
      }
    }
    index.push(k)
    size += 10 + id.length + (reply?.frame.length ?? 0)
    for (const cmd of commands) commandArgs.push(cmd.length, ...cmd)
  }
  const blob = Buffer.allocUnsafe(size)
  let at = 0
  batch.forEach(({ id, reply, commands }, e) => {
    at = blob.writeUInt16LE(id.length, at)
    at += blob.write(id, at, 'latin1')
    at = blob.writeUInt16LE(index[e]!, at)
    const frame = reply?.frame
    at = blob.writeUInt32LE(frame?.length ?? 0, at)
    if (frame) at += frame.copy(blob, at)
    at = blob.writeUInt16LE(commands.length, at)
  })
  return [group, consumer, low, high, blob, keys.length, ...keys, ...commandArgs]
}

/** Orders two stream ids (`ms-seq`, both decimal integers) as Redis does. */
export function compareIds(a: string, b: string): number {
  const da = a.indexOf('-')
  const db = b.indexOf('-')
  // Same shape (the usual case): the strings order as the ids do.
  if (da === db && a.length === b.length) return a < b ? -1 : a > b ? 1 : 0
  // Decimal integers without leading zeros: the longer is the larger, else the first digit
  // that differs decides (no slicing or parsing: this runs twice per settled task).
  if (da !== db) return da - db
  for (let i = 0; i < da; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i)
    if (d !== 0) return d
  }
  const la = a.length - da
  const lb = b.length - db
  if (la !== lb) return la - lb
  for (let i = da + 1; i < a.length; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i)
    if (d !== 0) return d
  }
  return 0
}
