/**
 * The stock campaigns' rules: a campaign's status, when a week is published and purged, and what a campaign
 * definition or a declaration must satisfy before anything is written.
 */
import { AppError, type FieldError } from '../platform/errors.ts'
import type { Lang } from '../platform/i18n.ts'
import { DATE_MAX, DATE_MIN } from '../platform/input.ts'
import { fieldError } from './errors.ts'
import type { CampaignRow } from './queries.ts'
import { addDays, mondayOfLabel, parisDay, parisStartOfDay, weekOfMonday } from './time.ts'

const FIRST_YEAR = Number(DATE_MIN.slice(0, 4))
const LAST_YEAR = Number(DATE_MAX.slice(0, 4))

export type CampaignStatus = 'scheduled' | 'open' | 'ended' | 'closed'

/** Declarations are accepted from startDate 00:00 to the day after endDate 00:00, Paris time. */
export const opensAt = (c: Pick<CampaignRow, 'start_date'>) => parisStartOfDay(c.start_date)
export const endsAt = (c: Pick<CampaignRow, 'end_date'>) => parisStartOfDay(addDays(c.end_date, 1))

export function statusOf(c: CampaignRow, now: Date): CampaignStatus {
  if (c.closed_at) return 'closed'
  if (now < opensAt(c)) return 'scheduled'
  if (now >= endsAt(c)) return 'ended'
  return 'open'
}

const STATUS_TEXT = {
  scheduled: (c: CampaignRow) => ({ fr: `n’est pas encore ouverte (à partir du ${c.start_date})`, en: `is not open yet (from ${c.start_date})` }),
  ended: (c: CampaignRow) => ({ fr: `est terminée depuis le ${c.end_date}`, en: `ended on ${c.end_date}` }),
  closed: (c: CampaignRow) => ({ fr: `a été close par l’opérateur le ${parisDay(c.closed_at!)}`, en: `was closed by the operator on ${parisDay(c.closed_at!)}` }),
}

/** A 409 with the campaign's status unless it accepts declarations now. */
export function assertOpen(c: CampaignRow, now: Date, lang: Lang) {
  const status = statusOf(c, now)
  if (status === 'open') return
  const text = STATUS_TEXT[status](c)
  throw new AppError('STOCK_CAMPAIGN_NOT_OPEN', { name: c.name, ...text }, { campaignStatus: status, errors: [{ field: 'params.id', code: status, message: text[lang] }] })
}

/** Raw data of a week is purged at 00:00 Paris time, retentionDays days after the week ended. */
export const purgeAt = (monday: string, retentionDays: number) => parisStartOfDay(addDays(monday, 7 + retentionDays))

/**
 * A week's aggregates are published once no declaration can change them any more: the week has ended, or the
 * campaign is over. Publishing a week in progress would let a reader who reads before and after one pharmacy's
 * declaration learn its quantity by difference, whatever the cell suppression.
 */
export function isPublished(c: CampaignRow, monday: string, now: Date) {
  return weekOfMonday(monday).end <= now || c.closed_at !== null || now >= endsAt(c)
}

/** The Monday of a `week` query parameter, or a 400 naming it. */
export function mondayParam(label: string, lang: Lang) {
  // The years of every date the service is given (platform/input.ts): a week of 0746 is a typing mistake.
  const year = Number(label.slice(0, 4))
  if (!(year >= FIRST_YEAR && year <= LAST_YEAR)) {
    throw fieldError('querystring.week', 'week_range', { fr: `la semaine ${label} est hors des années ${FIRST_YEAR} à ${LAST_YEAR}`, en: `week ${label} is outside the years ${FIRST_YEAR} to ${LAST_YEAR}` }, lang)
  }
  const monday = mondayOfLabel(label)
  if (!monday) throw fieldError('querystring.week', 'week', { fr: `la semaine ${label} n’existe pas`, en: `week ${label} does not exist` }, lang)
  return monday
}

/** A campaign ends on or after its start, and lists only products of the referential. */
export function campaignErrors(input: { startDate: string; endDate: string; products: string[] }, known: Set<string>, lang: Lang): FieldError[] {
  const errors: FieldError[] = []
  if (input.endDate < input.startDate) {
    errors.push({ field: 'body.endDate', code: 'order', message: lang === 'fr' ? `la fin (${input.endDate}) précède le début (${input.startDate})` : `the end (${input.endDate}) is before the start (${input.startDate})` })
  }
  input.products.forEach((cip13, i) => {
    if (!known.has(cip13)) errors.push({ field: `body.products.${i}`, code: 'unknown', message: lang === 'fr' ? `produit ${cip13} absent du référentiel` : `product ${cip13} is not in the referential` })
  })
  return errors
}

/** Each declared product is listed in the campaign and appears once; every refused item is named. */
export function declarationErrors(items: Array<{ cip13: string }>, listed: Set<string>, fieldOf: (i: number) => string, lang: Lang): FieldError[] {
  const errors: FieldError[] = []
  const seen = new Map<string, number>()
  items.forEach((item, i) => {
    if (!listed.has(item.cip13)) {
      errors.push({ field: `${fieldOf(i)}.cip13`, code: 'not_in_campaign', message: lang === 'fr' ? `le produit ${item.cip13} ne fait pas partie de la campagne` : `product ${item.cip13} is not part of the campaign` })
    } else if (seen.has(item.cip13)) {
      errors.push({ field: `${fieldOf(i)}.cip13`, code: 'duplicate', message: lang === 'fr' ? `le produit ${item.cip13} figure déjà en position ${seen.get(item.cip13)}` : `product ${item.cip13} already appears at position ${seen.get(item.cip13)}` })
    }
    seen.set(item.cip13, i)
  })
  return errors
}
