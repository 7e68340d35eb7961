/**
 * A UDP sender inside a network namespace, for packets no kernel WireGuard would send: a forged
 * initiation, a captured one replayed from another address. A long-lived plain-node child (no
 * tsx: a node start costs seconds in the TCG VM) reading one JSON request a line on stdin and
 * answering with the source address it sent from.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const SENDER_SOURCE = `
import dgram from 'node:dgram';
import readline from 'node:readline';
const lines = readline.createInterface({ input: process.stdin });
process.stdout.write(JSON.stringify({ ready: true }) + '\\n');
lines.on('line', async (line) => {
  const { packet, address, port, bind } = JSON.parse(line);
  const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise((resolve, reject) => { socket.once('error', reject); socket.bind({ address: bind, port: 0 }, resolve); });
    const from = socket.address();
    await new Promise((resolve, reject) => socket.send(Buffer.from(packet, 'hex'), port, address, (e) => (e ? reject(e) : resolve())));
    process.stdout.write(JSON.stringify({ sent: true, from: { address: from.address, port: from.port } }) + '\\n');
  } catch (error) {
    process.stdout.write(JSON.stringify({ sent: false, error: String(error) }) + '\\n');
  } finally {
    socket.close();
  }
});
`;

export interface SendRequest {
  packet: Uint8Array;
  address: string;
  port: number;
  /** Source address to send from (one of the namespace's). */
  bind: string;
}

export class NamespaceSender {
  private readonly pending: Array<(answer: { sent: boolean; from?: { address: string; port: number }; error?: string }) => void> = [];
  private readonly ready: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    let markReady!: () => void;
    this.ready = new Promise((resolve) => (markReady = resolve));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const message = JSON.parse(line) as { ready?: boolean; sent?: boolean };
      if (message.ready) markReady();
      else this.pending.shift()?.(message as { sent: boolean });
    });
  }

  /** Starts the child now; `send` waits for it to be ready. */
  static start(namespace: string): NamespaceSender {
    const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '--input-type=module', '-e', SENDER_SOURCE], { stdio: ['pipe', 'pipe', 'inherit'] });
    return new NamespaceSender(child);
  }

  /** Sends one datagram; resolves with the source address and port it left from. */
  async send(request: SendRequest): Promise<{ address: string; port: number }> {
    await this.ready;
    const answer = await new Promise<{ sent: boolean; from?: { address: string; port: number }; error?: string }>((resolve) => {
      this.pending.push(resolve);
      this.child.stdin!.write(JSON.stringify({ packet: Buffer.from(request.packet).toString('hex'), address: request.address, port: request.port, bind: request.bind }) + '\n');
    });
    if (!answer.sent || !answer.from) throw new Error(`the sender failed: ${answer.error}`);
    return answer.from;
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}
