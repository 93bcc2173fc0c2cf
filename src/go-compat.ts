// Values written the way Go programs write them: Fleet is a Go program, so are its secrets'
// readers, and operators copy Go conventions into our flags and environment.

/** Go's strconv.ParseBool: exactly these spellings, anything else is not a boolean. */
export function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}
