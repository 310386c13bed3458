// Rate limiting of repeated log lines, so that a client or a failing server cannot flood the log.

/** Counts repeats of each key and admits one log line per key and interval. */
export class RepeatLimiter {
  private readonly seen = new Map<string, { loggedAt: number; suppressed: number }>()

  constructor(
    private readonly intervalMs: number,
    /** Keys remembered at once; beyond it, all are forgotten and the next line of each is admitted. */
    private readonly maxKeys = 4096
  ) {}

  /** Returns the count of repeats suppressed since the last admitted one, or null to stay quiet. */
  admit(key: string, nowMs: number): number | null {
    const entry = this.seen.get(key)
    if (entry !== undefined && nowMs - entry.loggedAt < this.intervalMs) {
      entry.suppressed++
      return null
    }
    const suppressed = entry?.suppressed ?? 0
    if (entry === undefined && this.seen.size >= this.maxKeys) this.seen.clear()
    this.seen.set(key, { loggedAt: nowMs, suppressed: 0 })
    return suppressed
  }
}
