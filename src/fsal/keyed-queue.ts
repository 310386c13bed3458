// Runs asynchronous steps one after another per key, with no order between keys. Used where a
// store cannot make two changes of one thing safely at once: the writes of one file, or the calls
// that add one name to a directory.

export class KeyedQueue<K> {
  /** The promise that settles when the last step queued for each key has run. */
  private readonly tails = new Map<K, Promise<unknown>>()

  /**
   * Runs `step` after every step queued earlier for `key`, whether those succeeded or failed, and
   * returns its result. A key is forgotten once its queue is empty.
   */
  run<T>(key: K, step: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve()
    const next = previous.then(step, step)
    const tail = next.catch(() => undefined)
    this.tails.set(key, tail)
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    })
    return next
  }
}
