/**
 * How error messages name a value of the wrong kind: by its type and, for byte arrays, its
 * length — never its content, since the value may be a key.
 */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return `a ${value.length}-byte ${value.constructor.name}`;
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name ? `a ${name}` : 'an object';
  }
  return `a ${typeof value}`;
}
