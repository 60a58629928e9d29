/** The referential's own error codes and its not-found answers. */
import { defineErrors, errorDef, notFound } from '../platform/errors.ts'

defineErrors({
  PRODUCT_CODE_IS_CIS: errorDef(400, 'Code de médicament (CIS) au lieu d’un code de présentation', 'Medicine code (CIS) instead of a presentation code', (p) => ({
    fr: `${p.cis} est un CIS (8 chiffres) : il désigne un médicament et toutes ses présentations. Consultez /v1/medicines/${p.cis}, ou donnez un CIP13, un GTIN-14 ou un CIP7.`,
    en: `${p.cis} is a CIS (8 digits): it names a medicine and all its presentations. See /v1/medicines/${p.cis}, or give a CIP13, a GTIN-14 or a CIP7.`,
  })),
  UNKNOWN_LAB: errorDef(400, 'Laboratoire inconnu', 'Unknown lab', (p) => ({
    fr: `${p.field} : ${p.labId} n’est pas un laboratoire enregistré sur le service.`,
    en: `${p.field}: ${p.labId} is not a lab registered on the service.`,
  })),
})

export const orgNotFound = () => notFound('L’organisation', 'The organisation')
export const productNotFound = (code: string) => notFound(`Le produit ${code}`, `Product ${code}`)
export const medicineNotFound = (cis: string) => notFound(`Le médicament ${cis}`, `Medicine ${cis}`)
export const genericGroupNotFound = (id: number) => notFound(`Le groupe générique ${id}`, `Generic group ${id}`)
