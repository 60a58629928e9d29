/**
 * Import of the public medicines database (BDPM) files into medicines, presentations, availability, generic
 * groups, composition and prescription conditions: the files are read by rules/bdpm-format.ts, compared with and
 * written to the database by queries/bdpm-import.ts.
 *
 * A bad line never stops the import: it is reported (file, 1-based line number, reason in French) and skipped.
 * The whole run is one transaction.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Kysely, Transaction } from 'kysely'
import { bumpGeneration } from '../../dispensation/use-cases/facts.ts'
import { type Actor, audit } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import { cip13Problem, cisProblem } from '../../platform/identifiers.ts'
import type { GenericType } from '../db.ts'
import * as q from '../queries/bdpm-import.ts'
import type { AvailabilityRow, ComponentRow, MedicineRow, PresentationRow } from '../queries/bdpm-import.ts'
import { BDPM_FILES, type BdpmFile, normaliseHolder, parseDate, parsePrice, readAvailabilityFields, splitLines } from '../rules/bdpm-format.ts'
import { searchName } from '../rules/search-name.ts'

export interface FileCounts {
  /** Non-blank lines read. */
  read: number
  /** New rows (MITM: medicines newly flagged MITM). */
  inserted: number
  /** Existing rows that changed (MITM: ATC changed). */
  updated: number
  /** Existing rows identical to the line. */
  unchanged: number
  rejected: number
  /** Rows no longer published, removed: availability, generic groups, composition and conditions are complete lists. */
  removed: number
}

export interface RejectedLine {
  file: string
  /** 1-based, counting blank lines, as an editor shows it. */
  line: number
  reason: string
}

export interface BdpmImportReport {
  /** The run's time, also the audit entry's objectId. */
  at: string
  /** Published names of the files that were given. */
  files: string[]
  medicines: FileCounts
  presentations: FileCounts
  mitm: FileCounts
  availability: FileCounts
  /** Generic group memberships (one per group and medicine). */
  genericGroups: FileCounts
  /** Composition rows (one per medicine, element, link, nature and substance). */
  composition: FileCounts
  /** Prescription and dispensing conditions (one per medicine and condition). */
  conditions: FileCounts
  /** Generic group members whose CIS is not in the medicines: kept (the répertoire lists withdrawn medicines), counted here. */
  genericMembersWithoutMedicine: number
  /** Medicines in the database, after the import, whose holder maps to no lab. */
  medicinesWithoutLab: number
  /** Those holders, with how many medicines each: map them with PUT /v1/lab-holders/{holder}. */
  unmappedHolders: Array<{ holder: string | null; medicines: number }>
  rejected: RejectedLine[]
}

export type BdpmBuffers = Partial<Record<BdpmFile, Buffer>>

// ---- text helpers --------------------------------------------------------------------------------------

/** A price as read from the database (pg: string; other drivers: number) in the same form. */
const money = (v: string | number | null) => (v === null ? null : Number(v).toFixed(2))

const rate = (s: string) => (s === '' ? null : s.replace(/\s+/g, ''))
const yesNo = (s: string) => (/^oui$/i.test(s) ? true : /^non$/i.test(s) ? false : null)
const orNull = (s: string) => (s === '' ? null : s)
const ATC = /^[A-Z](\d{2}([A-Z]([A-Z](\d{2})?)?)?)?$/

const emptyCounts = (): FileCounts => ({ read: 0, inserted: 0, updated: 0, unchanged: 0, rejected: 0, removed: 0 })

const MEDICINE_FIELDS = ['name', 'search_name', 'form', 'routes', 'authorisation_status', 'procedure', 'marketing_state', 'authorisation_date', 'holder', 'lab_id', 'enhanced_monitoring'] as const
const PRESENTATION_FIELDS = ['cis', 'cip7', 'label', 'administrative_status', 'marketing_state', 'declaration_date', 'hospital_approved', 'reimbursement_rate', 'price_eur'] as const
const AVAILABILITY_FIELDS = ['status_code', 'status_label', 'start_date', 'planned_end_date', 'return_date', 'link'] as const

const same = <K extends string>(fields: readonly K[], a: Record<K, unknown>, b: Record<K, unknown>) => fields.every((k) => (a[k] ?? null) === (b[k] ?? null))

/**
 * Imports whichever BDPM files are given, in one transaction. Upserts: a second import of the same files
 * changes nothing and reports every row unchanged. Returns counts per file and every rejected line.
 */
export async function importBdpm(db: Kysely<DB>, files: BdpmBuffers, actor: Actor, at: Date = new Date()): Promise<BdpmImportReport> {
  const report: BdpmImportReport = {
    at: at.toISOString(),
    files: (Object.keys(BDPM_FILES) as BdpmFile[]).filter((k) => files[k]).map((k) => BDPM_FILES[k].name),
    medicines: emptyCounts(),
    presentations: emptyCounts(),
    mitm: emptyCounts(),
    availability: emptyCounts(),
    genericGroups: emptyCounts(),
    composition: emptyCounts(),
    conditions: emptyCounts(),
    genericMembersWithoutMedicine: 0,
    medicinesWithoutLab: 0,
    unmappedHolders: [],
    rejected: [],
  }
  const rejecter = (kind: BdpmFile) => (line: number, reason: string) => {
    report.rejected.push({ file: BDPM_FILES[kind].name, line, reason })
    report[kind].rejected++
  }

  return inTransaction(db, async (tx) => {
    await q.lockImports(tx)
    const now = new Date()

    // Every CIS the presentations, MITM and availability files may refer to: the database's and the file's.
    const existingMedicines = new Map((await q.allMedicines(tx)).map((m) => [m.cis, m]))
    const knownCis = new Set(existingMedicines.keys())
    const rejectedCis = new Set<string>()
    const unknownCis = (cis: string) => `CIS inconnu ${cis}${rejectedCis.has(cis) ? ` (sa ligne de ${BDPM_FILES.medicines.name} a été rejetée)` : ''}`

    // ---- CIS_bdpm.txt -------------------------------------------------------------------------------------
    if (files.medicines) {
      const reject = rejecter('medicines')
      const { lines, read } = splitLines('medicines', files.medicines, reject)
      report.medicines.read = read
      const holders = await holderResolver(tx)
      const seen = new Map<string, number>()
      const rows: MedicineRow[] = []
      for (const { no, f } of lines) {
        const [cis, name, form, routes, authStatus, procedure, state, authDate, , , holderRaw, monitoring] = f as [string, string, string, string, string, string, string, string, string, string, string, string]
        const cisBad = cisProblem(cis)
        if (cisBad) {
          reject(no, `CIS « ${cis} » : ${cisBad.fr}`)
          continue
        }
        const date = parseDate(authDate)
        const reason = !name
          ? 'dénomination du médicament absente'
          : date === undefined
            ? `date d’autorisation invalide « ${authDate} » (attendue : JJ/MM/AAAA)`
            : seen.has(cis)
              ? `CIS ${cis} en double (déjà ligne ${seen.get(cis)})`
              : null
        if (reason) {
          if (!seen.has(cis) && !knownCis.has(cis)) rejectedCis.add(cis)
          reject(no, reason)
          continue
        }
        seen.set(cis, no)
        knownCis.add(cis)
        const holder = holderRaw ? normaliseHolder(holderRaw) : null
        const before = existingMedicines.get(cis)
        // An operator's per-medicine correction survives re-imports unless the holder itself changed.
        const labId = before && before.lab_id !== null && before.holder === holder ? before.lab_id : holders.labOf(holder)
        const row: MedicineRow = {
          cis, name, search_name: searchName(name), form: orNull(form), routes: orNull(routes), authorisation_status: orNull(authStatus),
          procedure: orNull(procedure), marketing_state: orNull(state), authorisation_date: date ?? null, holder, lab_id: labId,
          enhanced_monitoring: /^oui$/i.test(monitoring), updated_at: now,
        }
        if (!before) report.medicines.inserted++
        else if (same(MEDICINE_FIELDS, before, row as Record<(typeof MEDICINE_FIELDS)[number], unknown>)) {
          report.medicines.unchanged++
          continue
        } else report.medicines.updated++
        rows.push(row)
      }
      await holders.save()
      await q.upsertMedicines(tx, rows)
    }

    // CIP13 -> CIS, to check that an availability line names a presentation of its own medicine.
    const presentationCis = new Map<string, string>()

    // ---- CIS_CIP_bdpm.txt ---------------------------------------------------------------------------------
    if (files.presentations || files.availability) {
      for (const p of await q.presentationCodes(tx)) presentationCis.set(p.cip13, p.cis)
    }
    if (files.presentations) {
      const reject = rejecter('presentations')
      const { lines, read } = splitLines('presentations', files.presentations, reject)
      report.presentations.read = read
      const existing = new Map((await q.allPresentations(tx)).map((p) => [p.cip13, { ...p, price_eur: money(p.price_eur) }]))
      const seen = new Map<string, number>()
      const rows: PresentationRow[] = []
      for (const { no, f } of lines) {
        const [cis, cip7, label, adminStatus, state, declDate, cip13, hospital, reimbursement, price] = f as [string, string, string, string, string, string, string, string, string, string]
        const cisBad = cisProblem(cis)
        const cipBad = cip13Problem(cip13)
        const date = parseDate(declDate)
        const priceEur = parsePrice(price)
        const reason = cisBad
          ? `CIS « ${cis} » : ${cisBad.fr}`
          : cipBad
            ? `CIP13 ${cip13} : ${cipBad.fr}`
            : cip7 !== '' && !/^\d{7}$/.test(cip7)
              ? `CIP7 « ${cip7} » : 7 chiffres attendus`
              : !label
                ? 'libellé de la présentation absent'
                : date === undefined
                  ? `date de déclaration invalide « ${declDate} » (attendue : JJ/MM/AAAA)`
                  : priceEur === undefined
                    ? `prix invalide « ${price} » (attendu : 12,34)`
                    : !knownCis.has(cis)
                      ? unknownCis(cis)
                      : seen.has(cip13)
                        ? `CIP13 ${cip13} en double (déjà ligne ${seen.get(cip13)})`
                        : null
        if (reason) {
          reject(no, reason)
          continue
        }
        seen.set(cip13, no)
        presentationCis.set(cip13, cis)
        const row: PresentationRow = {
          cip13, cis, cip7: orNull(cip7), label, administrative_status: orNull(adminStatus), marketing_state: orNull(state),
          declaration_date: date ?? null, hospital_approved: yesNo(hospital), reimbursement_rate: rate(reimbursement), price_eur: priceEur ?? null,
          updated_at: now,
        }
        const before = existing.get(cip13)
        if (!before) report.presentations.inserted++
        else if (same(PRESENTATION_FIELDS, before, row as Record<(typeof PRESENTATION_FIELDS)[number], unknown>)) {
          report.presentations.unchanged++
          continue
        } else report.presentations.updated++
        rows.push(row)
      }
      await q.upsertPresentations(tx, rows)
    }

    // ---- CIS_MITM.txt -------------------------------------------------------------------------------------
    // Flags the listed medicines; it does not un-flag others (the operator corrects with PATCH /v1/medicines/{cis}).
    if (files.mitm) {
      const reject = rejecter('mitm')
      const { lines, read } = splitLines('mitm', files.mitm, reject)
      report.mitm.read = read
      const current = new Map((await q.mitmMedicines(tx)).map((m) => [m.cis, m]))
      const seen = new Map<string, number>()
      const rows: Array<{ cis: string; atc: string | null }> = []
      for (const { no, f } of lines) {
        const [cis, atcRaw] = f as [string, string]
        const atc = atcRaw.toUpperCase()
        const cisBad = cisProblem(cis)
        const reason = cisBad
          ? `CIS « ${cis} » : ${cisBad.fr}`
          : atc !== '' && !ATC.test(atc)
            ? `code ATC invalide « ${atcRaw} » (ex. J01CA04)`
            : !knownCis.has(cis)
              ? unknownCis(cis)
              : seen.has(cis)
                ? `CIS ${cis} en double (déjà ligne ${seen.get(cis)})`
                : null
        if (reason) {
          reject(no, reason)
          continue
        }
        seen.set(cis, no)
        const before = current.get(cis)
        // An empty ATC keeps the one already known.
        const next = atc === '' ? (before?.atc ?? null) : atc
        if (!before) report.mitm.inserted++
        else if (before.atc === next) {
          report.mitm.unchanged++
          continue
        } else report.mitm.updated++
        rows.push({ cis, atc: atc === '' ? null : atc })
      }
      await q.flagMitm(tx, rows, now)
    }

    // ---- CIS_CIP_Dispo_Spec.txt ---------------------------------------------------------------------------
    // The file is the complete list of current statuses: a status no longer published is over and is removed.
    if (files.availability) {
      const reject = rejecter('availability')
      const { lines, read } = splitLines('availability', files.availability, reject)
      report.availability.read = read
      const existing = new Map((await q.allAvailability(tx)).map((a) => [`${a.cis}|${a.cip13 ?? ''}`, a]))
      const keep = new Set<string>()
      const seen = new Map<string, number>()
      const rows: AvailabilityRow[] = []
      const replaced: string[] = []
      for (const { no, f } of lines) {
        const { cis, cip13, code, label, link, dates, reason: fieldProblem } = readAvailabilityFields(f, 'de fin prévue')
        const key = `${cis}|${cip13}`
        // A line rejected for its content still keeps the status already known for its key: a typo in a date
        // must not erase a published shortage.
        keep.add(key)
        const owner = cip13 ? presentationCis.get(cip13) : undefined
        const reason =
          fieldProblem ??
          (!knownCis.has(cis)
            ? unknownCis(cis)
            : owner !== undefined && owner !== cis
              ? `CIP13 ${cip13} : présentation du CIS ${owner}, pas du CIS ${cis}`
              : seen.has(key)
                ? `statut en double pour CIS ${cis}${cip13 ? ` CIP13 ${cip13}` : ''} (déjà ligne ${seen.get(key)})`
                : null)
        if (reason) {
          reject(no, reason)
          continue
        }
        seen.set(key, no)
        const row: AvailabilityRow = {
          cis, cip13: orNull(cip13), status_code: Number(code), status_label: label, start_date: dates.start ?? null,
          planned_end_date: dates.sixth ?? null, return_date: dates.returned ?? null, link: orNull(link), updated_at: now,
        }
        const before = existing.get(key)
        if (!before) report.availability.inserted++
        else if (same(AVAILABILITY_FIELDS, before, row as Record<(typeof AVAILABILITY_FIELDS)[number], unknown>)) {
          report.availability.unchanged++
          continue
        } else {
          report.availability.updated++
          replaced.push(before.id)
        }
        rows.push(row)
      }
      // The unique key is an expression (cis, coalesce(cip13, '')), which ON CONFLICT cannot name portably:
      // replace changed rows by delete + insert instead.
      const stale = [...existing].filter(([key]) => !keep.has(key)).map(([, a]) => a.id)
      report.availability.removed = stale.length
      await q.deleteAvailability(tx, [...replaced, ...stale])
      await q.insertAvailability(tx, rows)
    }

    if (files.genericGroups) await importGenericGroups(tx, files.genericGroups, report, rejecter('genericGroups'), knownCis, now)
    if (files.composition) await importComposition(tx, files.composition, report.composition, rejecter('composition'), unknownCis, knownCis)
    if (files.conditions) await importConditions(tx, files.conditions, report.conditions, rejecter('conditions'), unknownCis, knownCis)
    // New presentations or conditions may put products under serialization (prescription-only): every API instance
    // reloads what the dispensation check holds.
    const c = report.conditions
    if (c.inserted + c.updated + c.removed + report.presentations.inserted > 0) await bumpGeneration(tx)

    const unmapped = await q.medicinesWithoutLabByHolder(tx)
    report.unmappedHolders = unmapped.map((u) => ({ holder: u.holder, medicines: Number(u.n) }))
    report.medicinesWithoutLab = report.unmappedHolders.reduce((s, u) => s + u.medicines, 0)

    await audit(
      tx,
      actor,
      {
        action: 'bdpm.imported',
        objectType: 'bdpm-import',
        objectId: report.at,
        changes: {
          files: report.files,
          medicines: report.medicines,
          presentations: report.presentations,
          mitm: report.mitm,
          availability: report.availability,
          genericGroups: report.genericGroups,
          composition: report.composition,
          conditions: report.conditions,
          medicinesWithoutLab: report.medicinesWithoutLab,
        },
      },
      at,
    )
    return report
  })
}

/**
 * Holder -> lab: the lab_holders table first (the operator's corrections, including "no lab"); else a lab
 * organisation whose name is the holder, and that match is recorded. An unmatched holder is not recorded,
 * so that a lab registered later is matched by the next import.
 */
async function holderResolver(tx: Transaction<DB>) {
  const mapped = new Map((await q.labHolders(tx)).map((h) => [h.holder, h.lab_id]))
  const fold = (s: string) => searchName(normaliseHolder(s))
  const labs = new Map<string, string>()
  for (const o of await q.labOrganisations(tx)) {
    if (!labs.has(fold(o.name))) labs.set(fold(o.name), o.id)
  }
  const found = new Map<string, string>()
  return {
    labOf(holder: string | null): string | null {
      if (!holder) return null
      if (mapped.has(holder)) return mapped.get(holder) ?? null
      const lab = labs.get(fold(holder)) ?? null
      if (lab) {
        found.set(holder, lab)
        mapped.set(holder, lab)
      }
      return lab
    },
    async save() {
      const rows = [...found].map(([holder, lab_id]) => ({ holder, lab_id, updated_at: new Date() }))
      await q.recordLabHolders(tx, rows)
    },
  }
}

/** A whole number as the BDPM writes it (no sign, no separator); undefined otherwise. */
const integer = (s: string) => (/^\d{1,9}$/.test(s) ? Number(s) : undefined)

/**
 * CIS_GENER_bdpm.txt: group id · group label · CIS · type (0 princeps, 1 generic, 2 by complementarity of
 * posology, 4 substitutable) · sort order. The file is the complete répertoire: a membership no longer listed is
 * removed, and a group left without members with it. Members need not be in CIS_bdpm.txt (withdrawn medicines
 * stay in the répertoire): they are kept and counted.
 */
async function importGenericGroups(tx: Transaction<DB>, buf: Buffer, report: BdpmImportReport, reject: (line: number, reason: string) => void, knownCis: Set<string>, now: Date) {
  const counts = report.genericGroups
  const { lines, read } = splitLines('genericGroups', buf, reject)
  counts.read = read
  const groups = new Map<number, { label: string; line: number }>()
  const members = new Map<string, { group_id: number; cis: string; type: GenericType; sort_order: number | null; line: number }>()
  const keep = new Set<string>()
  for (const { no, f } of lines) {
    const [groupRaw, label, cis, typeRaw, sortRaw] = f as [string, string, string, string, string]
    const groupId = integer(groupRaw)
    const cisBad = cisProblem(cis)
    if (groupId !== undefined && !cisBad) keep.add(`${groupId}|${cis}`) // a rejected line keeps what was known for its key
    const type = /^[0124]$/.test(typeRaw) ? (Number(typeRaw) as GenericType) : undefined
    const sort = sortRaw === '' ? null : integer(sortRaw)
    const group = groupId === undefined ? undefined : groups.get(groupId)
    const reason =
      groupId === undefined
        ? `identifiant de groupe invalide « ${groupRaw} » (nombre attendu)`
        : !label
          ? 'libellé du groupe générique absent'
          : cisBad
            ? `CIS « ${cis} » : ${cisBad.fr}`
            : type === undefined
              ? `type de générique invalide « ${typeRaw} » (attendu : 0, 1, 2 ou 4)`
              : sort === undefined
                ? `numéro de tri invalide « ${sortRaw} »`
                : group && group.label !== label
                  ? `libellé différent pour le groupe ${groupId} (ligne ${group.line})`
                  : members.has(`${groupId}|${cis}`)
                    ? `CIS ${cis} en double dans le groupe ${groupId} (déjà ligne ${members.get(`${groupId}|${cis}`)!.line})`
                    : null
    if (reason) {
      reject(no, reason)
      continue
    }
    if (!group) groups.set(groupId!, { label, line: no })
    members.set(`${groupId}|${cis}`, { group_id: groupId!, cis, type: type!, sort_order: sort ?? null, line: no })
  }

  const existingGroups = new Map((await q.genericGroups(tx)).map((g) => [g.id, g.label]))
  const changedGroups = [...groups].filter(([id, g]) => existingGroups.get(id) !== g.label).map(([id, g]) => ({ id, label: g.label, updated_at: now }))
  await q.upsertGenericGroups(tx, changedGroups)
  const existing = new Map((await q.genericMembers(tx)).map((m) => [`${m.group_id}|${m.cis}`, m]))
  const upserts: Array<{ group_id: number; cis: string; type: GenericType; sort_order: number | null }> = []
  for (const [key, { line: _line, ...m }] of members) {
    const before = existing.get(key)
    if (!knownCis.has(m.cis)) report.genericMembersWithoutMedicine++
    if (!before) counts.inserted++
    else if (before.type === m.type && before.sort_order === m.sort_order) {
      counts.unchanged++
      continue
    } else counts.updated++
    upserts.push(m)
  }
  await q.upsertGenericMembers(tx, upserts)
  const stale = [...existing.values()].filter((m) => !keep.has(`${m.group_id}|${m.cis}`))
  counts.removed = stale.length
  await q.deleteGenericMembers(tx, stale)
  await q.deleteEmptyGenericGroups(tx)
}

const componentKey = (c: Pick<ComponentRow, 'cis' | 'element' | 'link_no' | 'nature' | 'substance_code'>) => `${c.cis}|${c.element}|${c.link_no}|${c.nature}|${c.substance_code}`

/**
 * CIS_COMPO_bdpm.txt: CIS · pharmaceutical element · substance code · substance · dosage · dosage reference ·
 * nature (SA active substance, FT therapeutic fraction) · link number. A medicine's composition is replaced as a
 * whole: when one of its lines is rejected, its other lines are not applied either (a half composition would let
 * a product match a substance line it does not carry). Medicines no longer in the file lose their composition.
 */
async function importComposition(tx: Transaction<DB>, buf: Buffer, counts: FileCounts, reject: (line: number, reason: string) => void, unknownCis: (cis: string) => string, knownCis: Set<string>) {
  const { lines, read } = splitLines('composition', buf, reject)
  counts.read = read
  const byCis = new Map<string, Array<ComponentRow & { line: number }>>()
  const held = new Map<string, number>() // CIS whose composition is not applied -> the rejected line
  const seen = new Map<string, number>()
  for (const { no, f } of lines) {
    const [cis, element, code, substance, dosage, reference, nature, linkRaw] = f as [string, string, string, string, string, string, string, string]
    const linkNo = integer(linkRaw)
    const cisBad = cisProblem(cis)
    const row = { cis, element, link_no: linkNo ?? 0, nature: nature as 'SA' | 'FT', substance_code: code }
    const reason = cisBad
      ? `CIS « ${cis} » : ${cisBad.fr}`
      : !knownCis.has(cis)
        ? unknownCis(cis)
        : !element
          ? 'élément pharmaceutique absent'
          : !/^\d{1,10}$/.test(code)
            ? `code substance invalide « ${code} »`
            : !substance
              ? 'dénomination de la substance absente'
              : nature !== 'SA' && nature !== 'FT'
                ? `nature du composant invalide « ${nature} » (attendue : SA ou FT)`
                : linkNo === undefined
                  ? `numéro de liaison invalide « ${linkRaw} »`
                  : seen.has(componentKey(row))
                    ? `composant en double (déjà ligne ${seen.get(componentKey(row))})`
                    : null
    if (reason) {
      reject(no, reason)
      if (!cisBad && !held.has(cis)) held.set(cis, no)
      continue
    }
    seen.set(componentKey(row), no)
    const list = byCis.get(cis) ?? []
    list.push({ ...row, substance, search_substance: searchName(substance), dosage: orNull(dosage), dosage_reference: orNull(reference), line: no })
    byCis.set(cis, list)
  }
  for (const [cis, firstRejected] of held) {
    for (const r of byCis.get(cis) ?? []) reject(r.line, `composition du CIS ${cis} non mise à jour : sa ligne ${firstRejected} est rejetée`)
    byCis.delete(cis)
  }

  const existing = new Map<string, ComponentRow[]>()
  for (const r of await q.allComponents(tx)) {
    const list = existing.get(r.cis) ?? []
    list.push(r)
    existing.set(r.cis, list)
  }
  const FIELDS = ['substance', 'dosage', 'dosage_reference'] as const
  const replacedCis: string[] = []
  const rows: ComponentRow[] = []
  for (const [cis, list] of byCis) {
    const before = new Map((existing.get(cis) ?? []).map((r) => [componentKey(r), r]))
    let changed = before.size !== list.length
    for (const { line: _line, ...r } of list) {
      const b = before.get(componentKey(r))
      if (!b) counts.inserted++
      else if (FIELDS.every((k) => b[k] === r[k])) counts.unchanged++
      else counts.updated++
      if (!b || !FIELDS.every((k) => b[k] === r[k])) changed = true
      rows.push(r)
    }
    const keys = new Set(list.map(componentKey))
    counts.removed += [...before.keys()].filter((k) => !keys.has(k)).length
    if (changed) replacedCis.push(cis)
    else rows.splice(rows.length - list.length, list.length)
  }
  // Medicines that the file no longer describes (and whose lines were not rejected) lose their composition.
  const gone = [...existing.keys()].filter((cis) => !byCis.has(cis) && !held.has(cis))
  for (const cis of gone) counts.removed += existing.get(cis)!.length
  await q.deleteCompositions(tx, [...replacedCis, ...gone])
  await q.insertComponents(tx, rows)
}

/** CIS_CPD_bdpm.txt: CIS · condition (e.g. "liste I", "stupéfiants"). The complete list: conditions no longer published are removed. */
async function importConditions(tx: Transaction<DB>, buf: Buffer, counts: FileCounts, reject: (line: number, reason: string) => void, unknownCis: (cis: string) => string, knownCis: Set<string>) {
  const { lines, read } = splitLines('conditions', buf, reject)
  counts.read = read
  const seen = new Map<string, number>()
  const keep = new Set<string>()
  const rows: Array<{ cis: string; condition: string }> = []
  const existing = new Set((await q.prescriptionConditions(tx)).map((c) => `${c.cis}\t${c.condition}`))
  for (const { no, f } of lines) {
    const [cis, condition] = f as [string, string]
    const key = `${cis}\t${condition}` // fields never hold a tab
    keep.add(key)
    const cisBad = cisProblem(cis)
    const reason = cisBad
      ? `CIS « ${cis} » : ${cisBad.fr}`
      : !knownCis.has(cis)
        ? unknownCis(cis)
        : !condition
          ? 'condition absente'
          : seen.has(key)
            ? `condition en double pour le CIS ${cis} (déjà ligne ${seen.get(key)})`
            : null
    if (reason) {
      reject(no, reason)
      continue
    }
    seen.set(key, no)
    if (existing.has(key)) counts.unchanged++
    else {
      counts.inserted++
      rows.push({ cis, condition })
    }
  }
  await q.insertConditions(tx, rows)
  const stale = [...existing].filter((k) => !keep.has(k)).map((k) => k.split('\t') as [string, string])
  counts.removed = stale.length
  await q.deleteConditions(tx, stale)
}

/** Reads whichever of the BDPM files are in the folder (names matched without regard to case). */
export async function readBdpmDirectory(dir: string): Promise<BdpmBuffers> {
  const info = await stat(dir).catch(() => null)
  if (!info?.isDirectory()) throw new Error(`Dossier introuvable : ${dir}`)
  const names = await readdir(dir)
  const files: BdpmBuffers = {}
  for (const kind of Object.keys(BDPM_FILES) as BdpmFile[]) {
    const name = names.find((n) => n.toLowerCase() === BDPM_FILES[kind].name.toLowerCase())
    if (name) files[kind] = await readFile(join(dir, name))
  }
  if (Object.keys(files).length === 0) {
    throw new Error(`Aucun fichier BDPM dans ${dir} (attendus : ${Object.values(BDPM_FILES).map((f) => f.name).join(', ')})`)
  }
  return files
}

export async function importBdpmDirectory(db: Kysely<DB>, dir: string, actor: Actor): Promise<BdpmImportReport> {
  return importBdpm(db, await readBdpmDirectory(dir), actor)
}
