/**
 * The BDPM import's SQL: the lock that serialises imports, the rows each file is compared with, and the writes of
 * what changed (upserts, deletions of what is no longer published), in chunks. All run in the import's transaction.
 */
import { type Insertable, sql, type Transaction } from 'kysely'
import type { AvailabilityTable, DB, MedicinesTable, PresentationsTable } from '../../platform/db/schema.ts'
import { LOCKS } from '../../platform/db/locks.ts'
import type { GenericType, MedicineComponentsTable } from '../db.ts'

export type MedicineRow = Insertable<MedicinesTable> & { lab_id: string | null }
export type PresentationRow = Insertable<PresentationsTable>
export type AvailabilityRow = Omit<Insertable<AvailabilityTable>, 'id'>
export type ComponentRow = Omit<MedicineComponentsTable, never>

const chunks = <T>(rows: T[], size = 500): T[][] => Array.from({ length: Math.ceil(rows.length / size) }, (_, i) => rows.slice(i * size, (i + 1) * size))

/** Serialises imports: two at once would race on the same keys. */
export async function lockImports(tx: Transaction<DB>) {
  await sql`select pg_advisory_xact_lock(${LOCKS.bdpmImport})`.execute(tx)
}

// ---- medicines (CIS_bdpm.txt) and their labs -------------------------------------------------------------

export const allMedicines = (tx: Transaction<DB>) => tx.selectFrom('medicines').selectAll().execute()

export async function upsertMedicines(tx: Transaction<DB>, rows: MedicineRow[]) {
  for (const chunk of chunks(rows)) {
    await tx
      .insertInto('medicines')
      .values(chunk)
      .onConflict((oc) =>
        oc.column('cis').doUpdateSet((eb) => ({
          name: eb.ref('excluded.name'), search_name: eb.ref('excluded.search_name'), form: eb.ref('excluded.form'), routes: eb.ref('excluded.routes'),
          authorisation_status: eb.ref('excluded.authorisation_status'), procedure: eb.ref('excluded.procedure'),
          marketing_state: eb.ref('excluded.marketing_state'), authorisation_date: eb.ref('excluded.authorisation_date'),
          holder: eb.ref('excluded.holder'), lab_id: eb.ref('excluded.lab_id'), enhanced_monitoring: eb.ref('excluded.enhanced_monitoring'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute()
  }
}

/** The operator's holder -> lab corrections (a null lab: "no lab"). */
export const labHolders = (tx: Transaction<DB>) => tx.selectFrom('lab_holders').select(['holder', 'lab_id']).execute()

export const labOrganisations = (tx: Transaction<DB>) => tx.selectFrom('organisations').select(['id', 'name']).where('role', '=', 'lab').orderBy('id').execute()

/** Records holder -> lab matches; a holder already mapped (by the operator meanwhile) is left as it is. */
export async function recordLabHolders(tx: Transaction<DB>, rows: Array<{ holder: string; lab_id: string; updated_at: Date }>) {
  for (const chunk of chunks(rows)) {
    await tx.insertInto('lab_holders').values(chunk).onConflict((oc) => oc.column('holder').doNothing()).execute()
  }
}

/** Medicines whose holder maps to no lab, counted per holder. */
export const medicinesWithoutLabByHolder = (tx: Transaction<DB>) =>
  tx
    .selectFrom('medicines')
    .select(['holder', (eb) => eb.fn.countAll<number>().as('n')])
    .where('lab_id', 'is', null)
    .groupBy('holder')
    .orderBy('holder')
    .execute()

// ---- presentations (CIS_CIP_bdpm.txt) ------------------------------------------------------------------

export const presentationCodes = (tx: Transaction<DB>) => tx.selectFrom('presentations').select(['cip13', 'cis']).execute()

export const allPresentations = (tx: Transaction<DB>) => tx.selectFrom('presentations').selectAll().execute()

export async function upsertPresentations(tx: Transaction<DB>, rows: PresentationRow[]) {
  for (const chunk of chunks(rows)) {
    await tx
      .insertInto('presentations')
      .values(chunk)
      .onConflict((oc) =>
        oc.column('cip13').doUpdateSet((eb) => ({
          cis: eb.ref('excluded.cis'), cip7: eb.ref('excluded.cip7'), label: eb.ref('excluded.label'),
          administrative_status: eb.ref('excluded.administrative_status'), marketing_state: eb.ref('excluded.marketing_state'),
          declaration_date: eb.ref('excluded.declaration_date'), hospital_approved: eb.ref('excluded.hospital_approved'),
          reimbursement_rate: eb.ref('excluded.reimbursement_rate'), price_eur: eb.ref('excluded.price_eur'), updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute()
  }
}

// ---- MITM (CIS_MITM.txt) ------------------------------------------------------------------------------------

export const mitmMedicines = (tx: Transaction<DB>) => tx.selectFrom('medicines').select(['cis', 'mitm', 'atc']).where('mitm', '=', true).execute()

/** Flags the medicines MITM; a null ATC keeps the one already known. */
export async function flagMitm(tx: Transaction<DB>, rows: Array<{ cis: string; atc: string | null }>, now: Date) {
  for (const chunk of chunks(rows)) {
    const values = sql.join(chunk.map((r) => sql`(${r.cis}::text, ${r.atc}::text)`))
    await sql`update medicines m set mitm = true, atc = coalesce(v.atc, m.atc), updated_at = ${now}
      from (values ${values}) as v(cis, atc) where m.cis = v.cis`.execute(tx)
  }
}

// ---- availability (CIS_CIP_Dispo_Spec.txt) --------------------------------------------------------------

export const allAvailability = (tx: Transaction<DB>) => tx.selectFrom('availability').selectAll().execute()

export async function deleteAvailability(tx: Transaction<DB>, ids: string[]) {
  for (const chunk of chunks(ids)) await tx.deleteFrom('availability').where('id', 'in', chunk).execute()
}

export async function insertAvailability(tx: Transaction<DB>, rows: AvailabilityRow[]) {
  for (const chunk of chunks(rows)) await tx.insertInto('availability').values(chunk).execute()
}

// ---- generic groups (CIS_GENER_bdpm.txt) ---------------------------------------------------------------

export const genericGroups = (tx: Transaction<DB>) => tx.selectFrom('generic_groups').select(['id', 'label']).execute()

export async function upsertGenericGroups(tx: Transaction<DB>, rows: Array<{ id: number; label: string; updated_at: Date }>) {
  for (const chunk of chunks(rows)) {
    await tx.insertInto('generic_groups').values(chunk).onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({ label: eb.ref('excluded.label'), updated_at: eb.ref('excluded.updated_at') }))).execute()
  }
}

export const genericMembers = (tx: Transaction<DB>) => tx.selectFrom('generic_group_members').selectAll().execute()

export async function upsertGenericMembers(tx: Transaction<DB>, rows: Array<{ group_id: number; cis: string; type: GenericType; sort_order: number | null }>) {
  for (const chunk of chunks(rows)) {
    await tx
      .insertInto('generic_group_members')
      .values(chunk)
      .onConflict((oc) => oc.columns(['group_id', 'cis']).doUpdateSet((eb) => ({ type: eb.ref('excluded.type'), sort_order: eb.ref('excluded.sort_order') })))
      .execute()
  }
}

export async function deleteGenericMembers(tx: Transaction<DB>, members: Array<{ group_id: number; cis: string }>) {
  for (const chunk of chunks(members)) {
    await tx
      .deleteFrom('generic_group_members')
      .where((eb) => eb.or(chunk.map((m) => eb.and([eb('group_id', '=', m.group_id), eb('cis', '=', m.cis)]))))
      .execute()
  }
}

/** Removes the groups left without members. */
export async function deleteEmptyGenericGroups(tx: Transaction<DB>) {
  await tx.deleteFrom('generic_groups').where(({ not, exists, selectFrom }) => not(exists(selectFrom('generic_group_members as m').select('m.cis').whereRef('m.group_id', '=', 'generic_groups.id')))).execute()
}

// ---- composition (CIS_COMPO_bdpm.txt) ------------------------------------------------------------------

export const allComponents = (tx: Transaction<DB>) => tx.selectFrom('medicine_components').selectAll().execute()

/** Removes the whole composition of the given medicines. */
export async function deleteCompositions(tx: Transaction<DB>, cisList: string[]) {
  for (const chunk of chunks(cisList)) await tx.deleteFrom('medicine_components').where('cis', 'in', chunk).execute()
}

export async function insertComponents(tx: Transaction<DB>, rows: ComponentRow[]) {
  for (const chunk of chunks(rows)) await tx.insertInto('medicine_components').values(chunk).execute()
}

// ---- prescription conditions (CIS_CPD_bdpm.txt) ----------------------------------------------------------

export const prescriptionConditions = (tx: Transaction<DB>) => tx.selectFrom('prescription_conditions').select(['cis', 'condition']).execute()

export async function insertConditions(tx: Transaction<DB>, rows: Array<{ cis: string; condition: string }>) {
  for (const chunk of chunks(rows)) await tx.insertInto('prescription_conditions').values(chunk).execute()
}

export async function deleteConditions(tx: Transaction<DB>, stale: Array<[cis: string, condition: string]>) {
  for (const chunk of chunks(stale)) {
    await tx
      .deleteFrom('prescription_conditions')
      .where((eb) => eb.or(chunk.map(([cis, condition]) => eb.and([eb('cis', '=', cis), eb('condition', '=', condition)]))))
      .execute()
  }
}
