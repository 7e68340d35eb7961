/**
 * Running the tools the demo is a script over (ip, wg, nft, ping, openssl, bash), always
 * asynchronously: the demo reads the daemon's log as it comes, and a blocking child would hold
 * those lines back and skew every figure it prints.
 *
 * Stdin is /dev/null, never a pipe: bash reads ~/.bashrc when its stdin is a socket (Node's
 * 'pipe' is one), which on a host whose .bashrc does work costs seconds per bash in the VM.
 */
import { spawn } from 'node:child_process';

export class CommandError extends Error {
  constructor(readonly command: string, readonly exitCode: number | null, readonly stdout: string, readonly stderr: string) {
    super(`${command} failed (${exitCode === null ? 'killed' : `exit ${exitCode}`})${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
    this.name = 'CommandError';
  }
}

/** Runs a command; resolves with its stdout, rejects with a `CommandError` on a non-zero exit. */
export function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new CommandError([command, ...args].join(' ').slice(0, 160), code, stdout, stderr));
    });
  });
}

/**
 * One bash for many commands: every process start costs tens to hundreds of milliseconds in the
 * TCG VM, a bash start more, so the topology is built by one script rather than sixty execs.
 */
export function script(lines: readonly string[]): Promise<string> {
  return run('bash', ['--norc', '--noprofile', '-c', ['set -euo pipefail', ...lines].join('\n')]);
}

/** A command inside a network namespace. */
export function inNamespace(namespace: string, command: string, args: readonly string[]): Promise<string> {
  return run('ip', ['netns', 'exec', namespace, command, ...args]);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
