/** Validation of the national identifiers (see the domain overview). Each returns a reason or null. */
import type { Text } from './i18n.ts'

export function gs1CheckDigit(digits: string): number {
  // GS1: weights 3,1,3,1… from the rightmost data digit.
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    const n = digits.charCodeAt(digits.length - 1 - i) - 48
    sum += i % 2 === 0 ? n * 3 : n
  }
  return (10 - (sum % 10)) % 10
}

export function luhnValid(digits: string): boolean {
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    let n = digits.charCodeAt(digits.length - 1 - i) - 48
    if (i % 2 === 1) {
      n *= 2
      if (n > 9) n -= 9
    }
    sum += n
  }
  return sum % 10 === 0
}

export function cip13Problem(v: string): Text | null {
  if (!/^\d{13}$/.test(v)) return { fr: 'un CIP13 compte 13 chiffres', en: 'a CIP13 has 13 digits' }
  if (!v.startsWith('3400')) return { fr: 'un CIP13 commence par 3400', en: 'a CIP13 starts with 3400' }
  const expected = gs1CheckDigit(v.slice(0, 12))
  if (Number(v[12]) !== expected) {
    return { fr: `clé de contrôle invalide (attendue : ${expected})`, en: `invalid check digit (expected ${expected})` }
  }
  return null
}
/** Same answer as `cip13Problem(v) === null`, without a regular expression or an allocation: it runs for every scanned box. */
export function isCip13(v: string): boolean {
  if (v.length !== 13 || v.charCodeAt(0) !== 51 || v.charCodeAt(1) !== 52 || v.charCodeAt(2) !== 48 || v.charCodeAt(3) !== 48) return false
  let sum = 0
  for (let i = 11; i >= 0; i--) {
    const n = v.charCodeAt(i) - 48
    if (n < 0 || n > 9) return false
    sum += (11 - i) % 2 === 0 ? n * 3 : n
  }
  return v.charCodeAt(12) - 48 === (10 - (sum % 10)) % 10
}

/** CIP13 from a CIP13 or a GTIN-14 ('0' + CIP13); null when it is neither. */
export function toCip13(code: string): string | null {
  const c = code.length === 14 && code.startsWith('0') ? code.slice(1) : code
  return isCip13(c) ? c : null
}
export const toGtin14 = (cip13: string) => `0${cip13}`

export function sirenProblem(v: string): Text | null {
  if (!/^\d{9}$/.test(v)) return { fr: 'un SIREN compte 9 chiffres', en: 'a SIREN has 9 digits' }
  if (!luhnValid(v)) return { fr: 'clé de Luhn du SIREN invalide', en: 'invalid SIREN Luhn key' }
  return null
}

export function rppsProblem(v: string): Text | null {
  if (!/^\d{11}$/.test(v)) return { fr: 'un RPPS compte 11 chiffres', en: 'an RPPS number has 11 digits' }
  if (!luhnValid(v)) return { fr: 'clé de Luhn du RPPS invalide', en: 'invalid RPPS Luhn key' }
  return null
}

/** FINESS: 9 characters; department from the first two (2A/2B Corsica) or three (97x overseas). */
export function finessProblem(v: string): Text | null {
  if (!/^(\d{2}|2A|2B)\d{7}$/.test(v)) {
    return { fr: 'un FINESS compte 9 caractères : 2 pour le département (2A/2B pour la Corse) puis 7 chiffres', en: 'a FINESS has 9 characters: 2 for the department (2A/2B for Corsica) then 7 digits' }
  }
  const dep = departmentOfFiness(v)
  if (!dep || !DEPARTMENTS[dep]) return { fr: `département ${v.slice(0, 3)} inconnu`, en: `unknown department ${v.slice(0, 3)}` }
  return null
}

export function departmentOfFiness(finess: string): string | null {
  if (finess.startsWith('97') || finess.startsWith('98')) return finess.slice(0, 3)
  return finess.slice(0, 2)
}

/** Department code -> region code (INSEE, 2016 regions). */
export const REGIONS: Record<string, string> = {
  '84': 'Auvergne-Rhône-Alpes', '27': 'Bourgogne-Franche-Comté', '53': 'Bretagne', '24': 'Centre-Val de Loire', '94': 'Corse',
  '44': 'Grand Est', '32': 'Hauts-de-France', '11': 'Île-de-France', '28': 'Normandie', '75': 'Nouvelle-Aquitaine', '76': 'Occitanie',
  '52': 'Pays de la Loire', '93': 'Provence-Alpes-Côte d’Azur', '01': 'Guadeloupe', '02': 'Martinique', '03': 'Guyane', '04': 'La Réunion', '06': 'Mayotte',
}
const R: Record<string, string[]> = {
  '84': ['01', '03', '07', '15', '26', '38', '42', '43', '63', '69', '73', '74'],
  '27': ['21', '25', '39', '58', '70', '71', '89', '90'],
  '53': ['22', '29', '35', '56'],
  '24': ['18', '28', '36', '37', '41', '45'],
  '94': ['2A', '2B'],
  '44': ['08', '10', '51', '52', '54', '55', '57', '67', '68', '88'],
  '32': ['02', '59', '60', '62', '80'],
  '11': ['75', '77', '78', '91', '92', '93', '94', '95'],
  '28': ['14', '27', '50', '61', '76'],
  '75': ['16', '17', '19', '23', '24', '33', '40', '47', '64', '79', '86', '87'],
  '76': ['09', '11', '12', '30', '31', '32', '34', '46', '48', '65', '66', '81', '82'],
  '52': ['44', '49', '53', '72', '85'],
  '93': ['04', '05', '06', '13', '83', '84'],
  '01': ['971'], '02': ['972'], '03': ['973'], '04': ['974'], '06': ['976'],
}
export const DEPARTMENTS: Record<string, string> = Object.fromEntries(
  Object.entries(R).flatMap(([region, deps]) => deps.map((dep) => [dep, region])),
)
export const OVERSEAS_DEPARTMENTS = ['971', '972', '973', '974', '976']
export const regionOfDepartment = (dep: string | null | undefined) => (dep ? (DEPARTMENTS[dep] ?? null) : null)

export function cisProblem(v: string): Text | null {
  return /^\d{8}$/.test(v) ? null : { fr: 'un CIS compte 8 chiffres', en: 'a CIS has 8 digits' }
}
