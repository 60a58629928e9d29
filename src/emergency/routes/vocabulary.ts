/** The public vocabulary of emergency requests: statuses with the lifecycle, refusal reasons, shipping channels, conditions. */
import type { RoutePlugin } from '../../platform/types.ts'
import { CONDITIONS, REFUSAL_REASONS, SHIPPING_CHANNELS, STATUS_LABELS, STATUSES, TRANSITIONS, Vocabulary } from '../schemas.ts'
import { TAGS } from './common.ts'

const list = (o: Record<string, { fr: string; en: string }>) => Object.entries(o).map(([code, l]) => ({ code, fr: l.fr, en: l.en }))

const vocabularyRoutes: RoutePlugin = async (app) => {
  app.get(
    '/emergency-vocabulary',
    {
      config: { roles: 'public' },
      schema: {
        tags: TAGS,
        operationId: 'getEmergencyVocabulary',
        summary: 'Statuses, refusal reasons, shipping channels and eligibility conditions (French and English)',
        description: 'Public and cacheable. `statuses[].next` is the lifecycle.',
        response: { 200: Vocabulary },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=3600')
      return {
        statuses: STATUSES.map((code) => ({ code, ...STATUS_LABELS[code], next: TRANSITIONS[code] })),
        refusalReasons: list(REFUSAL_REASONS),
        shippingChannels: list(SHIPPING_CHANNELS),
        conditions: list(CONDITIONS),
      }
    },
  )
}

export default vocabularyRoutes
