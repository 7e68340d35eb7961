/**
 * `--config FILE`: the gateway's settings as one JSON object whose keys are the long flags in
 * camelCase (`"captureInterface": "eth0"`, `"resolverHeader": ["X-Region: ams"]`). Flags
 * given on the command line override the file's values key by key (a repeatable flag replaces
 * the file's whole list). Relative file paths in the file are relative to the file, so a
 * config and its key files can move together.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { GATEWAY_SETTING_KEYS, type RawGatewaySettings } from './arguments.js';
import { codeOf, messageOf, Refusal } from './refusal.js';

const MAX_CONFIG_BYTES = 1 << 20;
const PATH_KEYS: ReadonlySet<keyof RawGatewaySettings> = new Set([
  'privateKeyFile', 'resolverTokenFile', 'db', 'adminTokenFile', 'tlsCert', 'tlsKey',
]);
const KNOWN: ReadonlySet<string> = new Set(GATEWAY_SETTING_KEYS);

export function readConfigFile(path: string): RawGatewaySettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Refusal(`--config ${path}: cannot read it (${codeOf(error) ?? messageOf(error)})`);
  }
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw new Refusal(`--config ${path}: larger than ${MAX_CONFIG_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // SyntaxError messages quote a few characters around the fault, never the whole file; still, a
    // config may hold a header value, so the position is all that is kept.
    const at = /position (\d+)/.exec(messageOf(error))?.[1];
    throw new Refusal(`--config ${path}: not valid JSON${at !== undefined ? ` (at byte ${at})` : ''}`);
  }
  return configSettings(value, path);
}

/** Checks the shape of a parsed config (an object of known keys) and resolves its paths. */
export function configSettings(value: unknown, path: string): RawGatewaySettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Refusal(`--config ${path}: expected a JSON object`);
  const settings: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (!KNOWN.has(key)) throw new Refusal(`--config ${path}: unknown key '${key.slice(0, 64)}' (keys are the flags in camelCase: ${GATEWAY_SETTING_KEYS.join(', ')})`);
    if (item === null || item === undefined) continue;
    settings[key] = PATH_KEYS.has(key as keyof RawGatewaySettings) && typeof item === 'string' && item !== '' && !isAbsolute(item) && item !== ':memory:'
      ? resolve(dirname(path), item)
      : item;
  }
  if (typeof settings.resolverHeader === 'string') settings.resolverHeader = [settings.resolverHeader];
  if (Array.isArray(settings.resolverHeader)) {
    settings.resolverHeader = settings.resolverHeader.map((header: unknown) =>
      typeof header === 'string' && header.startsWith('@') && !isAbsolute(header.slice(1)) ? `@${resolve(dirname(path), header.slice(1))}` : header);
  }
  return settings as RawGatewaySettings;
}

/** The config file's settings with every flag that was given laid over them. */
export function mergeSettings(config: RawGatewaySettings, flags: RawGatewaySettings): RawGatewaySettings {
  const merged: Record<string, unknown> = { ...config };
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) merged[key] = value;
  return merged as RawGatewaySettings;
}
