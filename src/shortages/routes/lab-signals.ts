/** The lab's view of the signals: the map of open signals on its presentations, and its alert threshold. */
import { Type } from 'typebox'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { component } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { DateOnly, nullable } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { readSettings, signalMap, updateSettings } from '../use-cases/lab-signals.ts'
import { whoOf } from './common.ts'

const SignalMap = component(
  Type.Object(
    {
      from: DateOnly(),
      to: DateOnly(),
      openSignals: Type.Integer({ description: 'Open signals now on the selected presentations.' }),
      byPresentation: Type.Array(Type.Object({ cip13: Type.String(), name: Type.String(), open: Type.Integer() })),
      byDepartment: Type.Array(Type.Object({ department: Type.String(), region: nullable(Type.String()), open: Type.Integer() })),
      byRegion: Type.Array(Type.Object({ region: Type.String(), name: Type.String(), open: Type.Integer() })),
      overTime: Type.Array(Type.Object({ day: DateOnly(), opened: Type.Integer({ description: 'Signals made that day (Paris calendar).' }) })),
    },
    {
      $id: 'ShortageSignalMap',
      description: 'The "cartographie": counts only, never which pharmacy.',
      examples: [
        {
          from: '2026-10-24', to: '2026-11-22', openSignals: 3, byPresentation: [{ cip13: '3400936128149', name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', open: 3 }],
          byDepartment: [{ department: '75', region: '11', open: 2 }, { department: '69', region: '84', open: 1 }],
          byRegion: [{ region: '11', name: 'Île-de-France', open: 2 }, { region: '84', name: 'Auvergne-Rhône-Alpes', open: 1 }],
          overTime: [{ day: '2026-11-21', opened: 1 }, { day: '2026-11-22', opened: 2 }],
        },
      ],
    },
  ),
)

const Settings = component(
  Type.Object(
    {
      signalThreshold: nullable(
        Type.Integer({ minimum: 1, maximum: 100000, description: 'An event `shortage.signal_threshold_reached` reaches your feed (and webhooks) when the open signals on one of your presentations reach this number; null: no alert.' }),
      ),
    },
    { $id: 'ShortageLabSettings', additionalProperties: false, examples: [{ signalThreshold: 10 }] },
  ),
)

export const labSignalRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  app.get(
    '/shortage-signals-map',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageSignalMap',
        summary: 'Open signals on the lab’s presentations, by department, region and day (never which pharmacy)',
        description: 'Without `cip13`, every presentation of the lab. `from`/`to` (Paris days, default the last 30) bound `overTime`; the other counts are the signals open now. Another lab’s presentation answers 404.',
        querystring: Type.Object(
          { cip13: Type.Optional(Type.String({ pattern: '^0?\\d{13}$' })), from: Type.Optional(DateOnly()), to: Type.Optional(DateOnly()) },
          { additionalProperties: false },
        ),
        response: { 200: SignalMap, ...problems(404) },
      },
    },
    async (request) => signalMap(deps, whoOf(request), request.query),
  )

  app.get(
    '/shortage-settings',
    {
      config: { roles: ['lab'] },
      schema: { tags: ['shortages'], operationId: 'getShortageSettings', summary: 'The lab’s DP-Ruptures settings (signal threshold)', response: { 200: Settings } },
    },
    async (request) => readSettings(deps, whoOf(request)),
  )

  app.put(
    '/shortage-settings',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'updateShortageSettings',
        summary: 'Set the signal threshold that raises an event',
        headers: IdempotencyKeyHeader,
        body: Settings,
        response: { 200: Settings },
      },
    },
    async (request) => updateSettings(deps, whoOf(request), request.body.signalThreshold),
  )
}
