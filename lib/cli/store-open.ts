/**
 * `--db PATH`: the SQLite store, opened before anything else that could be half-done, with
 * "not writable" as a refusal that says why. SQLite in WAL mode writes two files beside the
 * database (`-wal`, `-shm`), so the directory must be writable as well as the file; checking
 * both with access(2) first gives a clear line instead of a SQLITE_CANTOPEN at the first write.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SqliteStore, StoreError } from '../gateway/sqlite-store.js';
import { codeOf, messageOf, Refusal } from './refusal.js';

export function openStore(path: string): SqliteStore {
  if (path !== ':memory:') checkWritable(path);
  try {
    return new SqliteStore(path);
  } catch (error) {
    if (error instanceof StoreError) {
      const cause = error.causeCode !== undefined ? ` (${error.causeCode})` : '';
      throw new Refusal(`--db ${path}: ${error.code === 'ERR_JITGUARD_STORE' ? 'cannot open it' : error.code}${cause}: ${error.message}`);
    }
    throw new Refusal(`--db ${path}: ${messageOf(error)}`);
  }
}

function checkWritable(path: string): void {
  const directory = dirname(resolve(path));
  if (!existsSync(directory)) throw new Refusal(`--db ${path}: database not writable: directory ${directory} does not exist`);
  if (!statSync(directory).isDirectory()) throw new Refusal(`--db ${path}: database not writable: ${directory} is not a directory`);
  try {
    accessSync(directory, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new Refusal(`--db ${path}: database not writable: directory ${directory} is not writable for this user (${codeOf(error) ?? 'EACCES'}; SQLite's WAL files go beside the database)`);
  }
  if (!existsSync(path)) return;
  if (!statSync(path).isFile()) throw new Refusal(`--db ${path}: database not writable: not a regular file`);
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (error) {
    throw new Refusal(`--db ${path}: database not writable: the file is not readable and writable for this user (${codeOf(error) ?? 'EACCES'})`);
  }
}
