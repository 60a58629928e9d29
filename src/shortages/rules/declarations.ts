// A declaration's rules: what its content must say (required fields, dates in order) and where its lifecycle goes.
import { AppError, notFound } from '../../platform/errors.ts'
import type { Lang } from '../../platform/i18n.ts'
import type { DeclarationData, DeclarationStatus } from '../db.ts'
import { CLOSED_STATUSES, TRANSITIONS } from '../schemas.ts'
import { fieldError } from './common.ts'

export const declarationNotFound = () => notFound('La déclaration', 'The declaration')

export type DeclarationState = Pick<
  DeclarationData,
  'kind' | 'cause' | 'cause_text' | 'anticipated_start' | 'actual_start' | 'estimated_end' | 'end_unknown' | 'actual_end'
>

/** Business rules on a declaration's content, naming the field that breaks them. */
export function checkDeclaration(s: DeclarationState, lang: Lang, prefix = 'body', today?: string) {
  // An actual date is a fact: it cannot be after today (Paris). A start to come is anticipatedStart.
  for (const [field, value] of [['actualStart', s.actual_start], ['actualEnd', s.actual_end]] as const) {
    if (today && value && value > today) throw futureActualDate(`${prefix}.${field}`, value, today, lang)
  }
  const required = (field: string, fr: string, en: string) => fieldError('VALIDATION_FAILED', `${prefix}.${field}`, 'required', { fr, en }, lang)
  if (s.kind === 'anticipated' && !s.anticipated_start) throw required('anticipatedStart', 'obligatoire pour un risque de rupture', 'required for an anticipated shortage')
  if (s.kind === 'observed' && !s.actual_start) throw required('actualStart', 'obligatoire pour une rupture constatée', 'required for an observed shortage')
  if (s.cause === 'other' && !s.cause_text) throw required('causeText', 'obligatoire avec la cause « autre »', 'required with cause "other"')
  if (s.end_unknown && s.estimated_end) {
    throw fieldError('DATES_OUT_OF_ORDER', `${prefix}.estimatedEnd`, 'conflict', { fr: 'une fin estimée est donnée alors que la fin est déclarée inconnue', en: 'an estimated end is given while the end is declared unknown' }, lang)
  }
  const start = s.actual_start ?? s.anticipated_start
  const startField = s.actual_start ? 'actualStart' : 'anticipatedStart'
  for (const [field, value] of [['estimatedEnd', s.estimated_end], ['actualEnd', s.actual_end]] as const) {
    if (start && value && value < start) {
      throw fieldError('DATES_OUT_OF_ORDER', `${prefix}.${field}`, 'order', { fr: `${value} est antérieure au début (${startField} ${start})`, en: `${value} is before the start (${startField} ${start})` }, lang)
    }
  }
}

export function futureActualDate(field: string, value: string, today: string, lang: Lang) {
  return fieldError('DATES_OUT_OF_ORDER', field, 'future', { fr: `date réelle dans le futur (${value}) : elle ne peut dépasser aujourd’hui (${today}) ; une date à venir se déclare en date prévue`, en: `actual date in the future (${value}): it cannot be after today (${today}); a date to come is declared as an anticipated date` }, lang)
}

export function assertTransition(from: DeclarationStatus, to: DeclarationStatus, lang: Lang) {
  const allowed = TRANSITIONS[from]
  if (!allowed.includes(to)) {
    throw new AppError('INVALID_TRANSITION', { from, to, allowedText: allowed.join(', ') }, { allowedTransitions: allowed, currentStatus: from })
  }
  void lang
}
export const isClosed = (s: DeclarationStatus) => (CLOSED_STATUSES as readonly string[]).includes(s)
