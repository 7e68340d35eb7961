/**
 * A refusal: the daemon will not start (or a command will not run) because of how it was
 * asked to, not because something broke. It is reported as one line on stderr and exit code 2,
 * so a supervisor (systemd, a shell script) can tell "fix the configuration" from "it crashed".
 */
export const REFUSAL_EXIT_CODE = 2;

export class Refusal extends Error {
  override name = 'Refusal';
}

/**
 * The one stderr line for a failure: `jitguard: <message>`. Line breaks inside a message
 * (from an error underneath) are folded so the line stays one line.
 */
export function stderrLine(message: string): string {
  return `jitguard: ${message.replace(/\s*[\r\n]+\s*/g, ' ').trim()}\n`;
}

/** The message of anything thrown, without assuming it is an Error. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The `code` of anything thrown (`ENOENT`, `ERR_JITGUARD_…`), if it has one. */
export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
