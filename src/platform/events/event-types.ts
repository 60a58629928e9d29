import type { Text } from '../i18n.ts'

/**
 * Every event type the service publishes, in one place: webhook subscriptions are checked against it, the
 * catalogue route lists it, and printed documents (fax notices, letters) name an event by its label, never by
 * its code. A service that publishes a new type adds it here (test/event-types.test.ts looks for any it missed).
 * The platform names the services' types here as data; it imports none of them.
 */
export interface EventTypeInfo {
  /** What a reader calls it (fax notices, letters, the catalogue). */
  label: Text
  /** Who receives it and when. */
  description: string
}

const pipeline = (kind: 'recall' | 'alert') => {
  const fr = kind === 'recall' ? { a: 'Rappel de lots', the: 'du rappel de lots' } : { a: 'Alerte de santé publique', the: 'de l’alerte de santé publique' }
  const en = kind === 'recall' ? 'Batch recall' : 'Public-health alert'
  const lower = en.toLowerCase()
  return {
    [`${kind}.submitted`]: { label: { fr: `${fr.a} soumis à l’ANSM`, en: `${en} submitted to ANSM` }, description: `ANSM: a ${lower} (or its correction) waits for a decision.` },
    [`${kind}.reviewed`]: { label: { fr: `Décision de l’ANSM sur le ${kind === 'recall' ? 'rappel' : 'message'}`, en: `ANSM’s decision on the ${lower}` }, description: 'The lab: ANSM approved, asked for changes or rejected.' },
    [`${kind}.comment`]: { label: { fr: `Commentaire sur le ${kind === 'recall' ? 'rappel' : 'message'}`, en: `Comment on the ${lower}` }, description: 'The other side of the exchange (lab or ANSM) commented.' },
    [`${kind}.discarded`]: { label: { fr: `${fr.a} abandonné par le laboratoire`, en: `${en} discarded by the lab` }, description: 'ANSM: the lab withdrew a version it had submitted.' },
    [`${kind}.schedule_cancelled`]: { label: { fr: `Diffusion programmée annulée`, en: 'Scheduled broadcast cancelled' }, description: 'The lab or ANSM cancelled a broadcast scheduled for later.' },
    [`${kind}.broadcast`]: { label: { fr: fr.a, en }, description: `Recipients (pharmacies, wholesalers, hospital pharmacies): a new ${lower}.` },
    [`${kind}.updated`]: { label: { fr: `${fr.a} — version corrigée`, en: `${en} — corrected version` }, description: 'Recipients: a corrected version is in force.' },
    [`${kind}.reminder`]: { label: { fr: `Relance ${fr.the}`, en: `${en} reminder` }, description: `Recipients that have not ${kind === 'recall' ? 'reported the action done' : 'read it'} yet.` },
    [`${kind}.closed`]: { label: { fr: `Clôture ${fr.the}`, en: `${en} closed` }, description: `Recipients: the ${lower} is over${kind === 'recall' ? '; its batches are no longer blocked' : ''}.` },
    [`${kind}.report`]: { label: { fr: `Bilan ${fr.the}`, en: `${en} report` }, description: 'ANSM: the report made when the lab closed it.' },
  } satisfies Record<string, EventTypeInfo>
}

export const EVENT_TYPES = {
  ...pipeline('recall'),
  ...pipeline('alert'),
  'shortage.automatic_response': { label: { fr: 'Réponse du laboratoire à un signalement de rupture', en: 'Lab’s answer to a shortage signal' }, description: 'The pharmacy that signalled a shortage: the lab’s automatic response.' },
  'shortage.signal_lapsed': { label: { fr: 'Signalement de rupture expiré', en: 'Shortage signal lapsed' }, description: 'The pharmacy: its signal was not renewed and lapsed.' },
  'shortage.signal_threshold_reached': { label: { fr: 'Seuil de signalements de rupture atteint', en: 'Shortage signal threshold reached' }, description: 'The lab: enough pharmacies signalled one of its presentations.' },
  'shortage.declaration_updated': { label: { fr: 'Déclaration de rupture mise à jour', en: 'Shortage declaration updated' }, description: 'Pharmacies with an open signal on one of its presentations: the lab changed its declaration.' },
  'shortage.declaration_closed': { label: { fr: 'Déclaration de rupture close', en: 'Shortage declaration closed' }, description: 'Pharmacies with an open signal on one of its presentations: the lab closed its declaration.' },
  'emergency.request_submitted': { label: { fr: 'Demande de dépannage d’urgence', en: 'Emergency request' }, description: 'The lab: a pharmacy asks for a presentation for one patient.' },
  'emergency.request_answered': { label: { fr: 'Réponse à une demande de dépannage', en: 'Answer to an emergency request' }, description: 'The pharmacy: the lab’s answer.' },
  'emergency.request_received': { label: { fr: 'Dépannage reçu par l’officine', en: 'Emergency delivery received' }, description: 'The lab: the pharmacy confirmed receipt.' },
  'emergency.request_cancelled': { label: { fr: 'Demande de dépannage annulée', en: 'Emergency request cancelled' }, description: 'The lab: the pharmacy cancelled its request.' },
  'emergency.request_escalated': { label: { fr: 'Demande de dépannage sans réponse', en: 'Emergency request escalated' }, description: 'The lab and the operator: a request was not answered in time.' },
  'stock.campaign_created': { label: { fr: 'Nouvelle campagne de déclaration de stocks', en: 'New stock-declaration campaign' }, description: 'Pharmacies: the operator opened a campaign.' },
  'serialization.alert': { label: { fr: 'Alerte de vérification des boîtes', en: 'Pack verification alert' }, description: 'The lab: a verification raised an alert on one of its packs.' },
  'serialization.alert.status': { label: { fr: 'Suivi d’une alerte de vérification', en: 'Pack verification alert update' }, description: 'The pharmacy: its alert’s status changed (the lab’s investigation, ANSM’s decision); the lab: ANSM closed an escalated alert.' },
  'serialization.alert.question': { label: { fr: 'Question du laboratoire sur une alerte de vérification', en: 'Lab’s question on a verification alert' }, description: 'The pharmacy: the lab asks about its alert; the lab: ANSM writes about an escalated alert.' },
  'serialization.alert.escalated': { label: { fr: 'Alerte de vérification transmise à l’ANSM (falsification suspectée)', en: 'Verification alert escalated to ANSM (falsification suspected)' }, description: 'ANSM: a lab concluded that a pack may be falsified; ANSM decides and closes the alert.' },
  'serialization.alert.answer': { label: { fr: 'Réponse de l’officine sur une alerte de vérification', en: 'Pharmacy’s answer on a verification alert' }, description: 'The lab: the pharmacy answered (pseudonymised).' },
  'eprescription.access.alert': { label: { fr: 'Tentatives d’accès répétées à une ordonnance numérique', en: 'Repeated access attempts on an e-prescription' }, description: 'The operator: many wrong access codes on one prescription; it is not locked, someone should look.' },
  'eprescription.dispensation.closed': { label: { fr: 'Délivrance d’une ordonnance numérique', en: 'E-prescription dispensed' }, description: 'The prescriber: a dispensation of its prescription was closed.' },
  'webhook.endpoint_disabled': { label: { fr: 'Point de terminaison webhook désactivé', en: 'Webhook endpoint disabled' }, description: 'The endpoint’s organisation: deliveries stopped (410 Gone or a long failure streak).' },
  'webhook.test': { label: { fr: 'Événement de test', en: 'Test event' }, description: 'Sent only by POST /v1/webhooks/{id}/test, to the endpoint tested; never on the feed.' },
  'fax.letter_required': { label: { fr: 'Courrier à envoyer : télécopie non transmise', en: 'Letter to send: fax not delivered' }, description: 'The sender of a faxed message (a lab): a fax failed after every retry; print the letter and record it sent.' },
} satisfies Record<string, EventTypeInfo>

export type EventType = keyof typeof EVENT_TYPES
export const EVENT_TYPE_NAMES = Object.keys(EVENT_TYPES).sort() as EventType[]

export const isEventType = (type: string): type is EventType => Object.hasOwn(EVENT_TYPES, type)

/** The label of an event type for a reader; an unregistered type gets a neutral label, never its code. */
export function eventTypeLabel(type: string, lang: 'fr' | 'en' = 'fr'): string {
  return isEventType(type) ? EVENT_TYPES[type].label[lang] : lang === 'fr' ? 'Message du Portail DP' : 'Portail DP message'
}

/** The known type closest to a mistyped one (edit distance), to suggest it; null when none is close. */
export function closestEventType(type: string): EventType | null {
  let best: { type: EventType; d: number } | null = null
  for (const known of EVENT_TYPE_NAMES) {
    const d = distance(type, known)
    if (!best || d < best.d) best = { type: known, d }
  }
  return best && best.d <= Math.max(3, Math.floor(type.length / 4)) ? best.type : null
}

// Levenshtein distance on short codes; a dependency would be more than these lines.
function distance(a: string, b: string) {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = cur
  }
  return prev[b.length]!
}
