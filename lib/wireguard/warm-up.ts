/**
 * A warm-up for the SET path: `validateConfig` and `encodeSetDevice` run on throwaway configs
 * (random keys, documentation addresses), one call per step, so that a process's first real
 * install or removal does not run that code cold. Nothing is sent anywhere.
 *
 * Why: code that has never run costs 10–30× its hot cost the first times (lazy compilation,
 * the interpreter), far more under emulation. In the TCG test VM a gateway's first one-peer
 * install held the event loop for 33 ms in `validateConfig` and `encodeSetDevice`, its first
 * removal of 16 peers for 59–69 ms (bench/gateway profiles, 2026-12-02), against about a
 * millisecond hot. A step of this warm-up is one validation or one encoding of a small config,
 * so a caller that yields between steps (`runInSlices`) never holds the event loop that long.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { encodeSetDevice } from './encode.js';
import type { PeerConfig } from './types.js';
import { validateConfig, wipeConfig } from './validate.js';

/** Any generic netlink family id: the messages are never sent. */
const UNSENT_FAMILY = 0x7fff;

/** Rounds of the four steps by default: enough for V8 to have compiled what they run. */
export const SET_PATH_WARM_UP_ROUNDS = 12;

/**
 * Yields after each call: a one-peer install as the gateway sends it (endpoint, keepalive, two
 * allowed IPs, replaced), validated then encoded, then a removal of 16 peers, validated then
 * encoded, `rounds` times.
 */
export function* setPathWarmUp(rounds = SET_PATH_WARM_UP_ROUNDS): Generator<void, void, void> {
  const key = () => randomBytes(32).toString('base64');
  for (let round = 0; round < rounds; round++) {
    const install: PeerConfig = {
      publicKey: key(), endpoint: `192.0.2.${1 + (round % 254)}:51820`, persistentKeepalive: 25,
      replaceAllowedIps: true, allowedIps: [`10.${round % 256}.0.1/32`, 'fd00::1/128'],
    };
    yield* validatedAndEncoded([install]);
    yield* validatedAndEncoded(Array.from({ length: 16 }, () => ({ publicKey: key(), remove: true })));
  }
}

function* validatedAndEncoded(peers: PeerConfig[]): Generator<void, void, void> {
  const normalized = validateConfig({ peers }, undefined);
  try {
    yield;
    for (const message of encodeSetDevice(UNSENT_FAMILY, 'wg0', normalized).messages) message.fill(0);
  } finally {
    wipeConfig(normalized);
  }
  yield;
}
