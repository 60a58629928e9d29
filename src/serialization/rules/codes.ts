import type { Lang, Text } from '../../platform/i18n.ts'

/**
 * The return codes of pack verification and state changes: stable, modelled on the national (NMVS) system's.
 * Every answer about a pack carries one, with a message that tells the pharmacist what to do.
 * `alert`: the code raises an alert on some attempt (alerts.ts says which: verification, decommission, undo).
 * `nmvs`: the national system's code for the same situation, for LGO vendors who know them.
 */
export interface ReturnCode {
  ok: boolean
  alert: boolean
  nmvs: string | null
  fr: string
  en: string
}

const c = (ok: boolean, alert: boolean, nmvs: string | null, fr: string, en: string): ReturnCode => ({ ok, alert, nmvs, fr, en })

export const RETURN_CODES = {
  PACK_ACTIVE: c(true, false, 'NMVS_SUCCESS', 'Boîte authentique et active : vous pouvez la délivrer.', 'Authentic and active pack: you may dispense it.'),
  STATE_CHANGED: c(true, false, 'NMVS_SUCCESS', 'Changement d’état enregistré. Conservez la référence de transaction : elle sert à annuler dans les 10 jours.', 'State change recorded. Keep the transaction reference: it is needed to undo within 10 days.'),
  INVALID_CODE: c(false, false, null, 'Le code scanné est illisible ou incomplet (voir « errors ») : vérifiez le lecteur (Verr. Maj., disposition du clavier, séparateur) et scannez de nouveau ; sinon saisissez les champs.', 'The scanned code is unreadable or incomplete (see "errors"): check the scanner (Caps Lock, keyboard layout, separator) and scan again; otherwise key in the fields.'),
  UNKNOWN_PRODUCT: c(false, false, 'NMVS_NC_PC_01', 'Code produit inconnu du répertoire : ce produit n’est pas sérialisé ou son laboratoire n’a pas chargé ses boîtes. Vérifiez le code ; en cas de doute, ne délivrez pas et contactez le laboratoire.', 'Product code unknown to the repository: the product is not serialized or its lab has not uploaded its packs. Check the code; if in doubt, do not dispense and contact the lab.'),
  UNKNOWN_SERIAL: c(false, true, 'NMVS_NC_PC_02', 'Numéro de série inconnu : possible falsification. Ne délivrez pas, mettez la boîte en quarantaine ; une alerte est transmise au laboratoire.', 'Unknown serial number: possible falsification. Do not dispense, quarantine the pack; an alert goes to the lab.'),
  BATCH_UNKNOWN: c(false, true, 'NMVS_FE_LOT_03', 'Lot inconnu pour ce produit (et numéro de série inconnu) : possible falsification. Vérifiez le numéro de lot saisi ; s’il est exact, ne délivrez pas et mettez la boîte en quarantaine ; une alerte est transmise au laboratoire.', 'Batch unknown for this product (and serial unknown): possible falsification. Check the batch number entered; if it is right, do not dispense and quarantine the pack; an alert goes to the lab.'),
  BATCH_MISMATCH: c(false, true, 'NMVS_FE_LOT_13', 'Le numéro de lot ne correspond pas à celui enregistré pour cette boîte : possible falsification. Ne délivrez pas, mettez la boîte en quarantaine.', 'The batch does not match the one recorded for this pack: possible falsification. Do not dispense, quarantine the pack.'),
  EXPIRY_MISMATCH: c(false, true, 'NMVS_FE_LOT_12', 'La date de péremption ne correspond pas à celle enregistrée pour ce lot : possible falsification. Ne délivrez pas, mettez la boîte en quarantaine.', 'The expiry date does not match the one recorded for this batch: possible falsification. Do not dispense, quarantine the pack.'),
  BATCH_RECALLED: c(false, false, 'NMVS_NC_PCK_22', 'Lot rappelé : ne délivrez pas ; retirez la boîte du stock et suivez les consignes du rappel (DP-Rappels).', 'Batch recalled: do not dispense; remove the pack from stock and follow the recall instructions (DP-Rappels).'),
  WITHDRAWN: c(false, false, 'NMVS_NC_PCK_22', 'Lot ou produit retiré par le laboratoire : ne délivrez pas ; retirez la boîte du stock.', 'Batch or product withdrawn by the lab: do not dispense; remove the pack from stock.'),
  EXPIRED: c(false, false, 'NMVS_NC_PCK_22', 'Boîte périmée (date dépassée ou lot déclaré périmé) : ne délivrez pas ; vous pouvez la déclarer détruite.', 'Pack expired (date passed or batch declared expired): do not dispense; you may record it as destroyed.'),
  ALREADY_INACTIVE: c(false, true, 'NMVS_NC_PCK_22', 'Boîte déjà désactivée (voir « pack.state ») : ne la délivrez pas. Une tentative de la désactiver de nouveau déclenche une alerte (alert: true) : mettez-la alors en quarantaine. Si c’est vous qui l’avez désactivée par erreur, annulez avec la référence de transaction.', 'Pack already inactive (see "pack.state"): do not dispense it. An attempt to deactivate it again raises an alert (alert: true): then quarantine the pack. If you deactivated it by mistake, undo with the transaction reference.'),
  STATUS_ALREADY_SET: c(false, false, 'NMVS_NC_PCK_19', 'La boîte est déjà dans cet état, par votre établissement : rien n’a été modifié.', 'The pack already has this state, set by your organisation: nothing was changed.'),
  UNDO_NOT_ALLOWED: c(false, true, 'NMVS_NC_PCK_06', 'Annulation impossible : une boîte détruite ou volée ne redevient jamais active, et seuls délivrée, échantillon, échantillon gratuit, verrouillée et exportée s’annulent.', 'Undo impossible: a destroyed or stolen pack never becomes active again, and only supplied, sample, free sample, locked and exported can be undone.'),
  UNDO_WINDOW_EXCEEDED: c(false, true, 'NMVS_NC_PCK_20', 'Annulation impossible : plus de 10 jours depuis le changement d’état. La boîte reste désactivée ; ne la délivrez pas.', 'Undo impossible: more than 10 days since the state change. The pack stays inactive; do not dispense it.'),
  UNDO_OTHER_USER: c(false, true, 'NMVS_NC_PCK_21', 'Annulation impossible : seul l’utilisateur qui a fait le changement peut l’annuler.', 'Undo impossible: only the user who made the change may undo it.'),
  UNDO_OTHER_ORGANISATION: c(false, true, 'NMVS_NC_PCK_21', 'Annulation impossible : le changement a été fait par un autre établissement. Ne délivrez pas la boîte.', 'Undo impossible: the change was made by another organisation. Do not dispense the pack.'),
  UNKNOWN_TRANSACTION: c(false, false, null, 'La référence de transaction ne correspond pas au dernier changement d’état de cette boîte : vérifiez-la.', 'The transaction reference is not the last state change of this pack: check it.'),
  TOO_MANY_REQUESTS: c(false, false, 'NMVS_TOO_MANY_REQUESTS', 'Trop de requêtes : réessayez après le délai indiqué (Retry-After).', 'Too many requests: retry after the indicated delay (Retry-After).'),
} as const satisfies Record<string, ReturnCode>

/** The message of an answer that raises an alert where the code alone does not always (ALREADY_INACTIVE). */
export const ALERT_TEXT: Partial<Record<keyof typeof RETURN_CODES, Text>> = {
  ALREADY_INACTIVE: {
    fr: 'Boîte déjà désactivée (voir « pack.state ») : possible falsification ou détournement. Ne la délivrez pas, mettez-la en quarantaine ; une alerte est transmise au laboratoire.',
    en: 'Pack already inactive (see "pack.state"): possible falsification or diversion. Do not dispense it, quarantine the pack; an alert goes to the lab.',
  },
}

export type ReturnCodeName = keyof typeof RETURN_CODES
export const RETURN_CODE_NAMES = Object.keys(RETURN_CODES) as ReturnCodeName[]

export const messageOf = (code: ReturnCodeName, lang: Lang): string => RETURN_CODES[code][lang]
export const textOf = (code: ReturnCodeName): Text => ({ fr: RETURN_CODES[code].fr, en: RETURN_CODES[code].en })

