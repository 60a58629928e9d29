/** The diffusion routes of one kind, registered in the order of the published contract. */
import type { RoutePlugin } from '../platform/types.ts'
import type { PipelineKind } from './db.ts'
import { close, report, reportPdf } from './routes/closing.ts'
import type { AddRoutes, KindRoutes } from './routes/common.ts'
import { create, discard, edit, get, list } from './routes/messages.ts'
import { approve, cancelSchedule, comment, decide, history, submit } from './routes/review.ts'
import { acknowledgement, coverage, ownAcknowledgement, paperAcknowledgement, recipientAcknowledgement, recipients } from './routes/tracking.ts'
import { LABEL } from './rules/kinds.ts'
import { schemasFor } from './schemas.ts'
import { depsOf } from './use-cases/context.ts'

// The published contract lists paths and methods in the order they are registered: keep this order.
const ROUTES: AddRoutes[] = [
  create, list, get, edit, submit, approve, decide, comment, history, coverage, recipients, acknowledgement,
  discard, cancelSchedule, ownAcknowledgement, paperAcknowledgement, recipientAcknowledgement, close, report, reportPdf,
]

/**
 * The routes of one kind of message (batch recall or public-health alert): the same life, the same
 * tracking; alerts have no batches, no requested action, no blocking, and are targeted by category and region.
 */
export function pipelineRoutes(kind: PipelineKind): RoutePlugin {
  const S = schemasFor(kind)
  return async (app) => {
    // An action without a body (`curl -X POST …/submit`) is an empty one (this plugin's routes only).
    app.addHook('preValidation', async (request) => {
      if (request.body === undefined && (request.method === 'POST' || request.method === 'PUT')) request.body = {}
    })
    const k: KindRoutes = {
      kind,
      S,
      N: kind === 'recall' ? 'Recall' : 'Alert',
      base: `/${LABEL[kind].path}`,
      tags: [kind === 'recall' ? 'recalls' : 'alerts'],
      what: kind === 'recall' ? 'recall' : 'alert',
      deps: depsOf(app),
    }
    for (const add of ROUTES) add(app, k)
  }
}
