// How failures become text: every error the job reports is one line, in the thrower's own words.

/** The message of whatever was thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `text` folded onto one line, cut at `max` characters (a registry may answer with a page of HTML). */
export function oneLine(text: string, max = 1000): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
