/** `--resolver URL` with its headers: an `httpResolver` whose headers are read per request, so SIGHUP's re-read applies at once. */
import { httpResolver } from '../gateway/http-resolver.js';
import type { Resolver } from '../gateway/types.js';
import type { SecretFiles } from './secret-files.js';
import type { GatewaySettings } from './settings.js';

export function settingsResolver(settings: GatewaySettings, secrets: SecretFiles): Resolver | undefined {
  if (settings.resolver === null) return undefined;
  return httpResolver({ url: settings.resolver.url, headers: () => secrets.resolverHeaders() });
}
