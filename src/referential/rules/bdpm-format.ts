/**
 * The BDPM files as published: their names and columns, how their bytes are decoded and split into fields, and how
 * their dates, prices, holders and availability lines are read. No database: the import (use-cases/bdpm-import.ts,
 * and shortages/use-cases/availability-import.ts for the availability file) applies what is read here.
 *
 * Format of every file: Windows-1252, tab-separated, no header, CRLF, DD/MM/YYYY dates, decimal comma,
 * stray spaces around fields, occasional blank lines.
 */
import iconv from 'iconv-lite'
import { cip13Problem, cisProblem } from '../../platform/identifiers.ts'

export type BdpmFile = 'medicines' | 'presentations' | 'mitm' | 'availability' | 'genericGroups' | 'composition' | 'conditions'

/** The published file names, and their columns: `min` tolerates missing trailing optional columns. */
export const BDPM_FILES: Record<BdpmFile, { name: string; columns: number; min: number }> = {
  medicines: { name: 'CIS_bdpm.txt', columns: 12, min: 12 },
  presentations: { name: 'CIS_CIP_bdpm.txt', columns: 13, min: 12 }, // the last one (reimbursement text) is optional
  mitm: { name: 'CIS_MITM.txt', columns: 4, min: 3 }, // the link is optional
  availability: { name: 'CIS_CIP_Dispo_Spec.txt', columns: 8, min: 7 }, // the link is optional
  genericGroups: { name: 'CIS_GENER_bdpm.txt', columns: 5, min: 4 }, // the sort order is optional
  composition: { name: 'CIS_COMPO_bdpm.txt', columns: 8, min: 8 },
  conditions: { name: 'CIS_CPD_bdpm.txt', columns: 2, min: 2 },
}

// ---- text helpers --------------------------------------------------------------------------------------

/** Holder key: trimmed, upper case, single spaces (the BDPM has stray leading spaces). */
export const normaliseHolder = (s: string) => s.trim().replace(/\s+/g, ' ').toUpperCase()

/**
 * The BDPM is published in Windows-1252. A file that is valid UTF-8 and has non-ASCII bytes was re-saved by
 * an editor: decoding it as Windows-1252 would turn every "é" into "Ã©", so it is read as UTF-8 instead.
 */
export function decodeBdpm(buf: Buffer): string {
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return buf.subarray(3).toString('utf8')
  if (buf.some((b) => b >= 0x80)) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf)
    } catch {
      // not UTF-8: the normal case
    }
  }
  return iconv.decode(buf, 'win1252')
}

/** 'DD/MM/YYYY' -> 'YYYY-MM-DD'; '' -> null; undefined when it is not a real date. */
export function parseDate(s: string): string | null | undefined {
  if (s === '') return null
  const m = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(s)
  if (!m) return undefined
  const [dd, mm, yyyy] = [m[1]!, m[2]!, m[3]!]
  const d = new Date(Date.UTC(Number(yyyy), Number(mm) - 1, Number(dd)))
  if (d.getUTCFullYear() !== Number(yyyy) || d.getUTCMonth() !== Number(mm) - 1 || d.getUTCDate() !== Number(dd)) return undefined
  return `${yyyy}-${mm}-${dd}`
}

/**
 * The field checks of a CIS_CIP_Dispo_Spec.txt line that both its importers share (the referential's BDPM import, the
 * shortage declarations in shortages/rules/availability-file.ts). The sixth column is named by the caller: the two
 * read its meaning differently. `reason` is the first problem found, in French, or null.
 */
export function readAvailabilityFields(f: readonly string[], sixthColumn: string) {
  const [cis, cip13, code, label, start, sixth, returned, link] = f as [string, string, string, string, string, string, string, string]
  const dates = { start: parseDate(start), sixth: parseDate(sixth), returned: parseDate(returned) }
  const badDate = (
    [
      ['de début', start, dates.start],
      [sixthColumn, sixth, dates.sixth],
      ['de remise à disposition', returned, dates.returned],
    ] as const
  ).find(([, , v]) => v === undefined)
  const cisBad = cisProblem(cis)
  const cipBad = cip13 === '' ? null : cip13Problem(cip13)
  const reason = cisBad
    ? `CIS « ${cis} » : ${cisBad.fr}`
    : cipBad
      ? `CIP13 ${cip13} : ${cipBad.fr}`
      : !/^[1-4]$/.test(code)
        ? `code de statut invalide « ${code} » (attendu : 1, 2, 3 ou 4)`
        : !label
          ? 'libellé du statut absent'
          : badDate
            ? `date ${badDate[0]} invalide « ${badDate[1]} » (attendue : JJ/MM/AAAA)`
            : null
  return { cis, cip13, code, label, link, dates, reason }
}

/**
 * '24,34' -> '24.34' (two decimals, as numeric(12,2) gives it back); '' -> null; undefined when unreadable.
 * Prices of 1,000 € and more appear as '1,034,87' or '1 034,87': the last comma is the decimal one.
 */
export function parsePrice(s: string): string | null | undefined {
  const v = s.replace(/[\s\u00a0\u202f]/g, '')
  if (v === '') return null
  // Thousands separators only with the decimal part: '24,345' is refused rather than read as 24,345.00 €.
  const m = /^(?:(\d{1,3}(?:,\d{3})+),(\d{2})|(\d+)(?:[,.](\d{1,2}))?)$/.exec(v)
  if (!m) return undefined
  const units = (m[1] ?? m[3]!).replace(/,/g, '')
  if (units.length > 10) return undefined
  return `${BigInt(units)}.${(m[2] ?? m[4] ?? '').padEnd(2, '0')}`
}

export interface Line {
  no: number
  f: string[]
}

/**
 * Splits a file into trimmed fields per non-blank line; wrong column counts are rejected here, with the line's first
 * field (its CIS, in every BDPM file) for the report.
 */
export function splitLines(kind: BdpmFile, buf: Buffer, reject: (line: number, reason: string, first: string) => void): { lines: Line[]; read: number } {
  const spec = BDPM_FILES[kind]
  const lines: Line[] = []
  let read = 0
  const text = decodeBdpm(buf).split(/\r\n|\n|\r/)
  for (let i = 0; i < text.length; i++) {
    const raw = text[i]!
    if (raw.trim() === '') continue
    read++
    const f = raw.split('\t').map((x) => x.trim())
    // Trailing empty columns beyond the expected ones are harmless (an extra tab at the end of a line).
    while (f.length > spec.columns && f[f.length - 1] === '') f.pop()
    if (f.length < spec.min || f.length > spec.columns) {
      reject(i + 1, `${spec.columns} colonnes attendues, ${f.length} trouvée${f.length > 1 ? 's' : ''}`, f[0] ?? '')
      continue
    }
    while (f.length < spec.columns) f.push('')
    lines.push({ no: i + 1, f })
  }
  return { lines, read }
}
