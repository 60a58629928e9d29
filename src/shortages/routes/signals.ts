/** Signal routes: a pharmacy signals a presentation it cannot obtain, lists, reads, closes and renews its signals. */
import { Type } from 'typebox'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { DAY } from '../../platform/paris-time.ts'
import { Page, PageQuery } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { Signal, SignalInput } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { changeSignal, createSignal, listSignals, readSignal } from '../use-cases/signals.ts'
import { IdParams, whoOf } from './common.ts'

const SignalPage = Page(Signal, 'ShortageSignalPage')

export const signalRoutes: RoutePlugin<{ deps: Deps; lapseDays: number }> = async (app, { deps, lapseDays }) => {
  const lapseMs = lapseDays * DAY

  app.post(
    '/shortage-signals',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['shortages'],
        operationId: 'createShortageSignal',
        summary: 'Signal a presentation the pharmacy cannot obtain (rupture constatée)',
        description: [
          'Accepted once the presentation has been unavailable for **72 hours**: counted from `unavailableSince` (an instant, or a day meaning 00:00 Paris time, so that a daylight-saving change is counted in real hours). Earlier, 400 `SIGNAL_TOO_EARLY` says from when it may be signalled.',
          'One open signal per pharmacy and presentation: signalling again answers **200 with the open signal** and changes nothing. A new signal answers 201.',
          'The answer carries the lab’s automatic response and current declaration when there is one; the automatic response is also published on the pharmacy’s feed (`shortage.automatic_response`).',
          `An open signal lapses ${lapseDays} days after it was made or last renewed (POST …/renew).`,
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        body: SignalInput,
        response: { 200: Signal, 201: Signal, ...problems(404) },
      },
    },
    async (request, reply) => {
      const { created, signal } = await createSignal(deps, whoOf(request), request.body, lapseMs)
      return reply.code(created ? 201 : 200).send(signal)
    },
  )

  app.get(
    '/shortage-signals',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['shortages'],
        operationId: 'listShortageSignals',
        summary: 'The pharmacy’s own signals, newest first',
        querystring: Type.Object({ status: Type.Optional(Type.Enum(['open', 'closed', 'lapsed'])), ...PageQuery }, { additionalProperties: false }),
        response: { 200: SignalPage },
      },
    },
    async (request) => listSignals(deps, whoOf(request), request.query),
  )

  app.get(
    '/shortage-signals/:id',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageSignal',
        summary: 'One of the pharmacy’s signals, with the lab’s current answer',
        params: IdParams,
        response: { 200: Signal, ...problems(404) },
      },
    },
    async (request) => readSignal(deps, whoOf(request), request.params.id),
  )

  app.post(
    '/shortage-signals/:id/close',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['shortages'],
        operationId: 'closeShortageSignal',
        summary: 'Close a signal: the pharmacy is supplied again',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 200, examples: ['supplied'] })) }, { additionalProperties: false })),
        response: { 200: Signal, ...problems(404, 409) },
      },
    },
    async (request) => changeSignal(deps, whoOf(request), request.params.id, { action: 'close', reason: request.body?.reason }),
  )

  app.post(
    '/shortage-signals/:id/renew',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['shortages'],
        operationId: 'renewShortageSignal',
        summary: 'Renew an open signal: the presentation is still missing',
        description: `Pushes the lapse deadline to ${lapseDays} days from now.`,
        headers: IdempotencyKeyHeader,
        params: IdParams,
        response: { 200: Signal, ...problems(404, 409) },
      },
    },
    async (request) => changeSignal(deps, whoOf(request), request.params.id, { action: 'renew', lapseMs }),
  )
}
