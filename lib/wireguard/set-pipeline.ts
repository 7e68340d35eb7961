/**
 * A large `setDevice` as a pipeline: the SET messages are encoded a batch at a time, in slices
 * of the event loop, while the kernel applies the batch before (`NetlinkConnection
 * .requestPipelined`). Loading 10^5 peers is a minute of kernel work under emulation (a DH per
 * peer) against seconds of encoding; encoded up front, those seconds held the event loop in one
 * piece and the ~16 MB of messages lived until the end. Here at most two batches exist at once,
 * and no slice of encoding runs longer than the slice clock allows.
 */
import type { Progress } from '../errors.js';
import type { MessageSource } from '../netlink/connection.js';
import { SliceClock } from '../slices.js';
import { progressAfter, setDeviceMessages, type MessageBoundary } from './encode.js';
import type { NormalizedConfig } from './validate.js';

/**
 * Bytes of messages per batch: a few messages, so the thread-pool hop per batch is small next
 * to the kernel's work on it, and the next batch is ready before the kernel is done.
 */
export const PIPELINE_BATCH_BYTES = 128 * 1024;

/** Configs with more peers than this go through the pipeline; smaller ones are one request. */
export const PIPELINE_MIN_PEERS = 512;

export class SetMessageSource implements MessageSource {
  private readonly messages: Generator<{ message: Buffer; boundary: MessageBoundary }, void, void>;
  private readonly boundaries: MessageBoundary[] = [];
  /** All messages the config takes, once known (at the end, or counted by `abandon`). */
  private total: number | undefined;
  private readonly clock = new SliceClock();

  constructor(family: number, interfaceName: string, config: NormalizedConfig, maxMessageBytes: number) {
    this.messages = setDeviceMessages(family, interfaceName, config, maxMessageBytes);
  }

  async next(): Promise<Buffer[] | undefined> {
    if (this.total !== undefined) return undefined;
    const batch: Buffer[] = [];
    let bytes = 0;
    this.clock.restart();
    while (bytes < PIPELINE_BATCH_BYTES) {
      const step = this.messages.next();
      if (step.done) {
        this.total = this.boundaries.length;
        break;
      }
      batch.push(step.value.message);
      this.boundaries.push(step.value.boundary);
      bytes += step.value.message.length;
      if (this.clock.due()) await this.clock.pause();
    }
    return batch.length > 0 ? batch : undefined;
  }

  async abandon(): Promise<void> {
    // Encoding the rest only to count it, wiping each message at once: a failure's `progress`
    // says how many messages the whole config would have taken.
    while (this.total === undefined) {
      const step = this.messages.next();
      if (step.done) {
        this.total = this.boundaries.length;
        break;
      }
      step.value.message.fill(0);
      this.boundaries.push(step.value.boundary);
      if (this.clock.due()) await this.clock.pause();
    }
  }

  /** Peer-level progress after `completedMessages` of the config's messages were accepted. */
  progress(completedMessages: number): Progress {
    return progressAfter(this.boundaries, this.total ?? this.boundaries.length, completedMessages);
  }
}
