/**
 * The messages between `VerifierPool` and its worker threads: one batch of initiations out, one
 * buffer of results back, both transferred (not copied) and both free of secrets — packets are
 * what was on the wire, results are public keys and timestamps.
 *
 * A batch is `count` packets of 148 bytes back to back. A result is 45 bytes per packet: a status
 * byte (0 = authenticated, else the code of the `Responder.unwrap` reason that refused it), then,
 * when authenticated, the initiator's 32-byte public key and its 12-byte TAI64N timestamp.
 */
import { KEY_LENGTH } from '../keys.js';
import { TIMESTAMP_SIZE } from '../noise/constants.js';
import type { Responder, UnwrapRejectReason } from '../noise/responder.js';
import { INITIATION_LENGTH } from '../protocol/initiation.js';
import type { VerifyResult } from './verify.js';

/** Main thread → worker. */
export interface BatchRequest {
  readonly batch: number;
  /** `count` packets of {@link INITIATION_LENGTH} bytes. */
  readonly packets: ArrayBuffer;
}

/** Worker → main thread: the results of a batch, in the order of its packets. */
export interface BatchReply {
  readonly batch: number;
  readonly results: ArrayBuffer;
}

/** Worker → main thread, once, when the worker can serve batches (its responder is built). */
export interface WorkerReady {
  readonly ready: true;
}

/** Worker → main thread, once, when the warm-up is over (`failure`: why it ended early, or null). */
export interface WorkerWarmedUp {
  readonly warmedUp: WarmUpReport;
}

export interface WarmUpReport {
  readonly verifications: number;
  readonly ms: number;
  readonly failure: string | null;
}

export type WorkerMessage = BatchReply | WorkerReady | WorkerWarmedUp;

/** What a worker is started with (`workerData`). The key is a KeyObject: it crosses as a handle, never as bytes. */
export interface VerifyWorkerData {
  readonly privateKey: import('node:crypto').KeyObject;
  /** Synthetic verifications to run at start (lib/noise/warm-up.ts). */
  readonly warmUp: number;
}

export const RESULT_LENGTH = 1 + KEY_LENGTH + TIMESTAMP_SIZE;

const STATUS_OK = 0;
/** An exception from unwrap (a bug: it never throws for bytes). */
const STATUS_EXCEPTION = 255;
/** Status byte of each rejection; 0 is success. Fixed order: both sides share this table. */
const REASON_CODES: readonly UnwrapRejectReason[] = ['size', 'type', 'mac1', 'replay', 'ephemeral', 'static', 'static-noncanonical', 'timestamp'];

/** Packs packets into one transferable buffer. */
export function packBatch(packets: readonly Uint8Array[]): ArrayBuffer {
  const out = new Uint8Array(packets.length * INITIATION_LENGTH);
  packets.forEach((packet, i) => out.set(packet, i * INITIATION_LENGTH));
  return out.buffer;
}

/** Worker side: verifies every packet of a batch with `responder` and encodes the results. */
export function verifyBatch(responder: Responder, packets: ArrayBuffer): ArrayBuffer {
  const count = Math.floor(packets.byteLength / INITIATION_LENGTH);
  const results = new Uint8Array(count * RESULT_LENGTH);
  for (let i = 0; i < count; i++) {
    const at = i * RESULT_LENGTH;
    try {
      const result = responder.unwrap(new Uint8Array(packets, i * INITIATION_LENGTH, INITIATION_LENGTH));
      if (result.ok) {
        results[at] = STATUS_OK;
        results.set(result.publicKeyBytes, at + 1);
        results.set(result.timestamp.bytes, at + 1 + KEY_LENGTH);
      } else {
        results[at] = REASON_CODES.indexOf(result.reason) + 1;
      }
    } catch {
      results[at] = STATUS_EXCEPTION;
    }
  }
  return results.buffer;
}

/** Main side: the `index`-th result of a reply. */
export function decodeResult(results: ArrayBuffer, index: number): VerifyResult {
  const bytes = new Uint8Array(results, index * RESULT_LENGTH, RESULT_LENGTH);
  const status = bytes[0]!;
  if (status === STATUS_OK) {
    return {
      ok: true,
      publicKey: Buffer.from(results, index * RESULT_LENGTH + 1, KEY_LENGTH).toString('base64'),
      timestamp: bytes.slice(1 + KEY_LENGTH),
    };
  }
  const reason = REASON_CODES[status - 1];
  if (reason === undefined) return { ok: false, reason: 'verify-failed', detail: 'exception' };
  return { ok: false, reason: 'unauthenticated', detail: reason };
}

/** The number of results in a reply. */
export function resultCount(results: ArrayBuffer): number {
  return Math.floor(results.byteLength / RESULT_LENGTH);
}
