// npm run docs:check — the docs page in a real browser (Debian's chromium, headless): starts the service, loads
// /docs, sees the operations and the guides listed, finds an operation by search, and checks that the page asked
// nothing of any other host (it must work offline). Exit code 1 with what failed; a screenshot in $DOCS_CHECK_SHOT.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/platform/config.ts'
import { createDatabase } from '../src/platform/db/index.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const started = Date.now()
const failures: string[] = []
const check = (ok: boolean, what: string) => {
  console.log(`${ok ? 'ok' : 'FAILED'}  ${what}`)
  if (!ok) failures.push(what)
}

// DOCS_CHECK_URL: a service already running (CI checks the one `npm start` booted). Otherwise one is started here;
// the page needs no data: a pool that never connects (pg connects lazily), as for the contract export.
const running = process.env.DOCS_CHECK_URL?.replace(/\/$/, '')
const database = running ? null : await createDatabase({ databaseUrl: 'postgres://unused@127.0.0.1:1/unused' })
const app = database ? await buildApp({ config: loadConfig({ NODE_ENV: 'test', MAX_EVENT_LOOP_DELAY_MS: '0', LOG_LEVEL: 'warn' }), database, background: 'off' }) : null
const base = running ?? (await app!.listen({ host: '127.0.0.1', port: 0 }))
const profile = mkdtempSync(path.join(tmpdir(), 'docs-check-'))
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
try {
  const page = context.pages()[0] ?? (await context.newPage())
  const elsewhere: string[] = []
  await page.route('**/*', (route) => {
    const url = route.request().url()
    if (url.startsWith(base) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue()
    elsewhere.push(url)
    return route.abort()
  })
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(String(e)))

  const response = await page.goto(`${base}/docs/`, { waitUntil: 'load' })
  check(response?.status() === 200, `/docs answers 200 (${response?.status()})`)
  check((await page.title()).includes('Portail DP'), `the page is branded (${await page.title()})`)
  await page.getByText('One product by CIP13', { exact: false }).first().waitFor({ timeout: 20_000 })
  // The renderer fills the page in steps (the webhooks come last): read it again until everything shows, or 20 s.
  const expected = ['One product by CIP13', 'Introduction', 'shortages', 'recalls', 'serialization', 'eprescription', 'events', 'Webhooks']
  let body = ''
  for (const until = Date.now() + 20_000; ; await page.waitForTimeout(250)) {
    body = await page.locator('body').innerText()
    if (expected.every((text) => body.includes(text)) || Date.now() > until) break
  }
  for (const text of expected) check(body.includes(text), `lists "${text}"`)
  const operations = await page.locator('nav li, aside li, [role="navigation"] li').filter({ hasText: /^(GET|POST|PUT|PATCH|DELETE)?[\s\S]*\b(GET|POST|PUT|PATCH|DEL|DELETE)\b/ }).count()
  check(operations >= 8, `operations listed in the sidebar (${operations})`)
  const guides = await page.evaluate(async () => (await (await fetch('./openapi.json')).json()).info.description as string)
  for (const title of ['Getting started', 'Concepts', 'Pharmacy software (LGO)', 'Lab ERP', 'Event catalogue', 'Generating a client', 'Changelog']) {
    check(guides.includes(`# ${title}`), `the page's document carries the guide "${title}"`)
  }

  // Search: the sidebar's search field (or its keyboard shortcut) finds an operation by words of its summary.
  // (the renderer marks its search button role="search"; a sidebar entry may also say "Search …")
  const opener = page.locator('[role="search"]').or(page.getByRole('button', { name: /open search/i })).first()
  if (await opener.count()) await opener.click()
  else await page.keyboard.press('Control+k')
  const input = page.locator('[role="combobox"], input[type="search"], input[placeholder*="earch"]').first()
  await input.waitFor({ timeout: 5_000 })
  await input.fill('dispensation be dispensed')
  const hit = page.getByRole('option').filter({ hasText: /be dispensed/i }).first()
  const found = await hit.waitFor({ timeout: 10_000 }).then(() => true, () => false)
  check(found, 'search finds "May the boxes of this dispensation be dispensed?"')
  if (found) {
    await hit.click()
    await page.waitForTimeout(500)
    check(/dispensation/i.test(decodeURIComponent(page.url())), `the result opens the operation (${page.url()})`)
  }
  check(elsewhere.length === 0, `nothing asked of another host${elsewhere.length ? `: ${[...new Set(elsewhere)].slice(0, 5).join(', ')}` : ''}`)
  check(errors.length === 0, `no script error${errors.length ? `: ${errors.slice(0, 3).join(' | ')}` : ''}`)
  if (process.env.DOCS_CHECK_SHOT) await page.screenshot({ path: process.env.DOCS_CHECK_SHOT, fullPage: false })
} finally {
  await context.close()
  rmSync(profile, { recursive: true, force: true })
  await app?.close()
  await database?.close()
}
console.log(`docs check: ${failures.length ? `${failures.length} failed` : 'passed'} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
process.exit(failures.length ? 1 : 0)
