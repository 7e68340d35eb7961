/** Option checks shared by the gateway's stages: one wording for every refusal. */
import { ValidationError } from '../errors.js';

/** A non-negative finite number of seconds, or `fallback` when undefined. */
export function secondsOption(value: unknown, fallback: number, path: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(path, `expected a non-negative number of seconds, got ${describeNumber(value)}`);
  }
  return value;
}

/** An integer in [min, max], or `fallback` when undefined. */
export function integerOption(value: unknown, fallback: number, min: number, max: number, path: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(path, `expected an integer from ${min} to ${max}, got ${describeNumber(value)}`);
  }
  return value;
}

function describeNumber(value: unknown): string {
  return typeof value === 'number' ? String(value) : typeof value;
}
