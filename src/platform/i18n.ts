import type { FastifyRequest } from 'fastify'

export type Lang = 'fr' | 'en'
export type Text = { fr: string; en: string }

/** French unless the client prefers English (Accept-Language, q-values respected). */
export function langOf(request: Pick<FastifyRequest, 'headers'>): Lang {
  const header = request.headers['accept-language']
  if (!header) return 'fr'
  let best: { lang: Lang; q: number } | undefined
  for (const part of header.split(',')) {
    const [tag = '', ...params] = part.trim().toLowerCase().split(';')
    const q = Number(params.find((p) => p.trim().startsWith('q='))?.split('=')[1] ?? 1)
    const lang = tag.startsWith('en') ? 'en' : tag.startsWith('fr') || tag === '*' ? 'fr' : undefined
    if (lang && Number.isFinite(q) && q > 0 && (!best || q > best.q)) best = { lang, q }
  }
  return best?.lang ?? 'fr'
}
