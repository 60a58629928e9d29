/** How a batch number is compared: the dispensation check, the registry's index and the recalls' blocked rows agree on it. */

/** The same batch typed by hand in lower case, or read with Caps Lock, must still match. */
export function normaliseBatch(batch: string): string {
  // Most batches arrive trimmed and in capitals: looking is cheaper than making a new string on every box checked.
  let plain = batch.length > 0 && batch.charCodeAt(0) > 32 && batch.charCodeAt(batch.length - 1) > 32
  for (let k = 0; plain && k < batch.length; k++) {
    const c = batch.charCodeAt(k)
    if ((c >= 97 && c <= 122) || c >= 128) plain = false
  }
  return plain ? batch : batch.trim().toUpperCase()
}
