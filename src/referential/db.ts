import type { ColumnType } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>

/** A group of the generic répertoire (CIS_GENER_bdpm.txt): what a pharmacist may substitute within. */
export interface GenericGroupsTable {
  id: number
  label: string
  updated_at: Timestamp
}

/** 0 princeps, 1 generic, 2 generic by complementarity of posology, 4 substitutable generic. */
export type GenericType = 0 | 1 | 2 | 4

export interface GenericGroupMembersTable {
  group_id: number
  cis: string
  type: GenericType
  sort_order: number | null
}

/** One substance of a medicine (CIS_COMPO_bdpm.txt): an active substance (SA) and its therapeutic fraction (FT) share link_no. */
export interface MedicineComponentsTable {
  cis: string
  element: string
  link_no: number
  nature: 'SA' | 'FT'
  substance_code: string
  substance: string
  search_substance: string
  dosage: string | null
  dosage_reference: string | null
}

export interface PrescriptionConditionsTable {
  cis: string
  condition: string
}

declare module '../platform/db/schema.ts' {
  interface DB {
    generic_groups: GenericGroupsTable
    generic_group_members: GenericGroupMembersTable
    medicine_components: MedicineComponentsTable
    prescription_conditions: PrescriptionConditionsTable
  }
}
