/**
 * With JITGUARD_GWK_TRACE=1 (passed into the VM like every JITGUARD_* variable), the gateway's
 * kernel tests write time-stamped lines on stderr: each command they run and how long it took,
 * each gateway event. For finding where a slow test spends its time in the TCG VM.
 */
const tracing = process.env.JITGUARD_GWK_TRACE === '1';
const start = Date.now();

export function trace(line: string): void {
  if (tracing) process.stderr.write(`[gwk +${((Date.now() - start) / 1000).toFixed(2)}s] ${line}\n`);
}
