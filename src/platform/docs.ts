import { readdirSync, readFileSync } from 'node:fs'
import scalar from '@scalar/fastify-api-reference'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * The docs page at /docs: the reference rendered by Scalar (search, operations grouped by tag, models, the
 * webhooks), with the guides of openapi/guides/ shown before it. Everything is served by this process (the
 * renderer's bundle included: /docs/js/scalar.js), so the page works without internet. The contract itself
 * stays at /openapi.json, without the guides; the page reads /docs/openapi.json (contract + guides).
 */
const GUIDES_DIR = new URL('../../openapi/guides/', import.meta.url)

/** The guides, in their file order (01-…, 02-…), as markdown; each begins with its `# Title`. */
export function loadGuides(): Array<{ file: string; markdown: string }> {
  let files: string[] = []
  try {
    files = readdirSync(GUIDES_DIR).filter((f) => f.endsWith('.md')).sort()
  } catch {
    return []
  }
  return files.map((file) => ({ file, markdown: readFileSync(new URL(file, GUIDES_DIR), 'utf8') }))
}

const BRAND_CSS = `
.light-mode, .dark-mode { --scalar-color-accent: #00794e; }
.light-mode { --scalar-background-accent: #e6f4ee; }
.scalar-app .sidebar-heading { font-weight: 500; }
`

export const docsPage = fp(
  async function docs(app: FastifyInstance, opts: { document: () => { info: { description?: string } } }) {
    const guides = loadGuides()
    let cached: Record<string, any> | null = null
    const withGuides = () => {
      if (cached) return cached
      const doc = structuredClone(opts.document())
      // Scalar shows the description's headings in its sidebar and search: the guides become pages of the docs.
      const intro = `${doc.info.description}\n\n${guides.length ? `Guides: ${guides.map((g) => g.markdown.match(/^# (.+)$/m)?.[1]).filter(Boolean).join(' · ')}.` : ''}`
      doc.info.description = [intro, ...guides.map((g) => g.markdown.replace(/\r\n/g, '\n'))].join('\n\n')
      cached = doc
      return doc
    }
    await app.register(scalar, {
      routePrefix: '/docs',
      logLevel: 'warn',
      configuration: {
        content: withGuides,
        pageTitle: 'Portail DP — API nationale · documentation',
        metaData: { title: 'Portail DP — API nationale', description: 'Reference and guides of the Portail DP API: shortages, recalls and alerts, serialization, e-prescription.' },
        theme: 'default',
        customCss: BRAND_CSS,
        // Offline: no web fonts, no telemetry, no hosted proxy or client. (Pinned to the last release whose whole
        // dependency tree supports Node 20: later ones pull sub-packages that require Node 22.)
        withDefaultFonts: false,
        telemetry: false,
        hideClientButton: true,
        showDeveloperTools: 'never',
        agent: { disabled: true },
        defaultHttpClient: { targetKey: 'shell', clientKey: 'curl' },
        documentDownloadType: 'json',
        showOperationId: true,
        operationTitleSource: 'summary',
      } as Record<string, unknown>,
    })
  },
  { name: 'docs-page' },
)
