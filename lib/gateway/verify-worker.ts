/**
 * The entry of a `VerifierPool` worker thread: runs `Responder.unwrap` on each batch the main
 * thread posts (verify-batch.ts) and posts the results back, one message per batch. The private
 * key arrives as a KeyObject in `workerData` (a handle to the same key material, never bytes).
 *
 * Between batches it warms the responder up (lib/noise/warm-up.ts) in short steps, so that a
 * batch posted during the warm-up waits at most one step.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Responder } from '../noise/responder.js';
import { ResponderWarmUp } from '../noise/warm-up.js';
import { verifyBatch, type BatchRequest, type VerifyWorkerData, type WorkerMessage } from './verify-batch.js';

/** One warm-up step: a few verifications, so a batch that arrives meanwhile is served soon. */
const WARM_UP_STEP_MS = 2;

const port = parentPort;
if (port === null) throw new Error('verify-worker.ts is the entry of a worker thread started by VerifierPool, not a program');
const data = workerData as VerifyWorkerData;
const responder = new Responder(data.privateKey);
const warmUp = new ResponderWarmUp(data.warmUp);

const post = (message: WorkerMessage, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);

port.on('message', (request: BatchRequest) => {
  const results = verifyBatch(responder, request.packets);
  post({ batch: request.batch, results }, [results]);
});

function warmUpStep(): void {
  if (warmUp.step(WARM_UP_STEP_MS)) {
    post({ warmedUp: { verifications: warmUp.done, ms: warmUp.spentMs, failure: warmUp.failure } });
  } else {
    setImmediate(warmUpStep);
  }
}

post({ ready: true });
if (data.warmUp > 0) setImmediate(warmUpStep);
