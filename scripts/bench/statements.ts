// Statements the service sent to its database so far (dp_db_statements_total, all pools), read from its /metrics;
// null when the server has none (the baseline). Read before and after a measured run: statements per request,
// printed beside the CPU figures, so that a change adding a round trip to a hot path shows.
export async function dbStatements(url: string): Promise<number | null> {
  const res = await fetch(`${url}/metrics`).catch(() => null)
  if (!res?.ok) return null
  let total = 0
  for (const m of (await res.text()).matchAll(/^dp_db_statements_total(?:\{[^}]*\})? (\S+)$/gm)) total += Number(m[1])
  return total
}
