#!/usr/bin/env node
/** The `jitguard` executable: the process's own output, signals and exit around `runCli`. */
import { runCli } from './run.js';

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  signals: process,
});
process.exit(code);
