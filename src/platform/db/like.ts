/** A user's text inside a LIKE pattern: its own %, _ and \ match themselves (the pattern's escape is \, the default). */
export const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)
