/**
 * The Redis keys of one pool or port, all under its name. Keys of one name share the hash tag
 * `{name}`, so a Redis Cluster keeps them in one slot (the scripts touch several of them).
 */

/** The keys of a pool or port called `name`. */
export interface Keys {
  /** The stream of tasks / packets: the port's queue. */
  readonly stream: string
  /** The consumer group every forwarder of this name joins. */
  readonly group: string
  /** Where tasks that used up their attempts go. */
  readonly dead: string
  /** The Pub/Sub channel that announces cancellations. */
  readonly cancelChannel: string
  /** A client's reply stream. */
  reply(client: string): string
  /** The marker of a cancelled task. */
  cancel(client: string, seq: string): string
  /** The stored outcome of an idempotency key. */
  done(key: string): string
}

/** Builds the keys of `name`. */
export function keysOf(name: string): Keys {
  const base = `iocp:{${name}}`
  return {
    stream: `${base}:tasks`,
    group: 'forwarders',
    dead: `${base}:dead`,
    cancelChannel: `${base}:cancel`,
    reply: (client) => `${base}:reply:${client}`,
    cancel: (client, seq) => `${base}:cancel:${client}:${seq}`,
    done: (key) => `${base}:done:${key}`,
  }
}
