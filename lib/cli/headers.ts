/**
 * Resolver headers: `--resolver-header 'Name: value'`, or `--resolver-header @FILE` for header
 * lines kept in a file (as curl's `-H @file`), so a credential need not sit on the command line
 * where `ps` shows it, and can be rotated by rewriting the file and sending SIGHUP.
 *
 * Header values may be secrets: no message here contains one.
 */
import { Refusal } from './refusal.js';

export type HeaderSource =
  | { kind: 'value'; name: string; value: string }
  | { kind: 'file'; path: string };

/** RFC 9110 token characters. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
/** Visible ASCII, space and tab; no CR, LF or NUL (a header injection). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Headers the resolver request sets itself or that would break it. */
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'accept']);

export function parseHeaderArgument(argument: string, where: string): HeaderSource {
  if (argument.startsWith('@')) {
    const path = argument.slice(1);
    if (path === '' || path.includes('\0')) throw new Refusal(`${where}: expected @FILE with a file path`);
    return { kind: 'file', path };
  }
  const [name, value] = parseHeaderLine(argument, where);
  return { kind: 'value', name, value };
}

/** `Name: value` → [name, value]; the value trimmed of surrounding white space. */
export function parseHeaderLine(line: string, where: string): [string, string] {
  const colon = line.indexOf(':');
  if (colon <= 0) throw new Refusal(`${where}: expected 'Name: value'`);
  const name = line.slice(0, colon).trim();
  const value = line.slice(colon + 1).trim();
  if (!HEADER_NAME.test(name)) throw new Refusal(`${where}: the header name is not an HTTP token`);
  if (RESERVED.has(name.toLowerCase())) throw new Refusal(`${where}: ${name} is set by the resolver itself`);
  if (!HEADER_VALUE.test(value)) throw new Refusal(`${where}: the value of ${name} contains a control character`);
  return [name, value];
}

/** Header lines of a header file; blank lines and lines starting with # are skipped. */
export function parseHeaderFile(text: string, path: string): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    headers.push(parseHeaderLine(line, `${path} line ${i + 1}`));
  });
  return headers;
}
