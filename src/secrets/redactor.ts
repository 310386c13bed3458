// Replaces known secret values in text, for messages that may echo a credential, such as an
// error from a storage backend that quotes the request it rejected.

/** The text that replaces each secret value. */
export const redactedText = '[secret]'

/**
 * Values shorter than this are not redacted, because replacing every "1" or "eu" would make
 * messages unreadable while hiding almost nothing.
 */
export const minRedactedLength = 4

/** A set of secret values and the redaction of text against them. */
export class Redactor {
  private readonly values = new Set<string>()
  /** The values sorted longest first, so that a value containing another one is replaced whole. */
  private sorted: string[] = []

  /** Adds a value, along with its JSON-escaped and URL-encoded forms when they differ. */
  add(value: string): void {
    const forms = [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)]
    let changed = false
    for (const form of forms) {
      if (form.length < minRedactedLength || this.values.has(form)) continue
      this.values.add(form)
      changed = true
    }
    if (changed) this.sorted = [...this.values].sort((a, b) => b.length - a.length)
  }

  /** Returns `text` with every added value replaced by `[secret]`. */
  redact(text: string): string {
    let result = text
    for (const value of this.sorted) {
      if (result.includes(value)) result = result.split(value).join(redactedText)
    }
    return result
  }
}
