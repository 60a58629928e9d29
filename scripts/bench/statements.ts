// Statements the service sent to its database (dp_db_statements_total, all pools), read from its /metrics: how many
// a measured run cost, printed beside the CPU figures, so that a change adding a round trip to a hot path shows.
async function dbStatements(url: string): Promise<number | null> {
  const res = await fetch(`${url}/metrics`).catch(() => null)
  if (!res?.ok) return null
  let total = 0
  for (const m of (await res.text()).matchAll(/^dp_db_statements_total(?:\{[^}]*\})? (\S+)$/gm)) total += Number(m[1])
  return total
}

/** Reads the count now; the function returned gives the statements sent since, or null for a server without them (the baseline). */
export async function statementsSince(url: string): Promise<() => Promise<number | null>> {
  const before = await dbStatements(url)
  return async () => {
    const after = before === null ? null : await dbStatements(url)
    return before === null || after === null ? null : after - before
  }
}
