/** The one form names are compared in: medicines, substances, patients and search words alike. */

/** Upper case without accents: what medicines.search_name holds and what searches compare with. */
export const searchName = (s: string) =>
  s
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toUpperCase()
