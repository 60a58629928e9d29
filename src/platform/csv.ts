import { type Input, type Options, stringify as csvStringify } from 'csv-stringify/sync'

/**
 * A cell a spreadsheet would run as a formula (=, +, -, @) or whose leading tab or carriage return hides one,
 * made inert with a leading apostrophe, as OWASP advises against CSV injection: the exports are opened in
 * spreadsheets by ANSM and ministry staff, and their cells hold text that labs and pharmacies typed.
 */
export function neutraliseCell(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value
}

/** csv-stringify's synchronous stringify, every string cell neutralised: the one CSV writer of the service. */
export function stringify(input: Input, options: Options = {}): string {
  const own = options.cast?.string
  return csvStringify(input, {
    ...options,
    cast: { ...options.cast, string: (value, context) => neutraliseCell(own ? String(own(value, context)) : value) },
  })
}
