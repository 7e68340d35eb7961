/**
 * `SqliteStore`: the {@link Store} jitguard ships, one SQLite file on better-sqlite3.
 *
 * **The file holds preshared keys.** It is created with mode 0600 before SQLite opens it, and
 * SQLite gives its `-wal` and `-shm` files the database file's mode. An existing database (or
 * `-wal`/`-shm`) that group or others may read or write is refused with a `StoreError`
 * (`ERR_JITGUARD_STORE_PERMISSIONS`) rather than tightened: the keys in it may already have
 * been read, and a silent chmod would hide that from the operator. `chmod 600` the files (and
 * consider rotating the preshared keys) to open it.
 *
 * **Durability.** WAL journal with `synchronous = NORMAL`: a commit is atomic and survives the
 * process being killed at any point (the WAL is in the page cache, which the kernel keeps); only
 * a power loss or kernel crash can lose the last transactions (the WAL is fsynced at checkpoints,
 * not at each commit). That is the right trade for what the store holds: peer configurations are
 * a cache of the control plane's (re-fetched or re-pushed), and losing the last replay
 * timestamps allows a replay of an initiation from just before the power loss, which is no
 * worse than WireGuard itself (the kernel keeps its replay state only in memory, so every
 * reboot forgets it). Each commit costs a write(2), not an fsync.
 *
 * **Cost.** Calls are synchronous (better-sqlite3). Each statement is prepared once, in the
 * constructor, and every method is one primary-key statement (`revokePeer`: two, in one
 * transaction), a few microseconds; `countPeers` reads a counter row kept by triggers.
 *
 * **Concurrency.** Several connections on one file (processes or instances) serialise their
 * writes through SQLite's lock; a writer waits up to `busyTimeoutMs` for another, blocking its
 * event loop meanwhile, then fails with a `StoreError` (`SQLITE_BUSY`).
 *
 * **Schema.** `PRAGMA user_version` is the schema version; {@link SCHEMA_MIGRATIONS} lists one
 * function per version, each run in its own transaction on open. A database newer than this code
 * is refused (`ERR_JITGUARD_STORE_VERSION`), never downgraded.
 *
 * **Validation.** Writes are validated (`validatePeerConfig`, origin, fetchedAt; a bad one throws
 * a `ValidationError` and writes nothing); reads are trusted, except that a row that does not
 * decode throws a `StoreError` instead of returning garbage. SQLite failures (disk full,
 * corruption, a read-only file, a lock held too long) are `StoreError`s too. No message contains
 * a preshared key.
 */
import { closeSync, constants as fsConstants, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { describe } from '../describe.js';
import { ValidationError } from '../errors.js';
import { TIMESTAMP_SIZE } from '../noise/constants.js';
import { canonicalKey, validatePeerConfig } from './peer-config.js';
import type { PeerOrigin, Store, StoredPeer } from './types.js';

type Connection = Database.Database;

/**
 * - `ERR_JITGUARD_STORE`: SQLite or the file system failed (`causeCode` has SQLite's or the
 *   system's code: `SQLITE_FULL`, `SQLITE_CORRUPT`, `SQLITE_READONLY`, `SQLITE_BUSY`, `ENOENT`, …),
 *   or a row did not decode (`causeCode` undefined).
 * - `ERR_JITGUARD_STORE_VERSION`: the database's schema is newer than this code knows.
 * - `ERR_JITGUARD_STORE_PERMISSIONS`: the database or its `-wal`/`-shm` is group/world accessible.
 * - `ERR_JITGUARD_CLOSED`: a call after `close()`.
 */
export type StoreErrorCode =
  | 'ERR_JITGUARD_STORE'
  | 'ERR_JITGUARD_STORE_VERSION'
  | 'ERR_JITGUARD_STORE_PERMISSIONS'
  | 'ERR_JITGUARD_CLOSED';

export interface StoreErrorFields {
  code: StoreErrorCode;
  /** The store method ('open', 'getPeer', 'putPeers', …). */
  operation: string;
  cause?: unknown;
}

/** A store that cannot do what was asked; the gateway reports it with this `code`. */
export class StoreError extends Error {
  override name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly operation: string;
  /** The code of the error underneath (`SQLITE_FULL`, `ENOENT`, …), when it had one. */
  readonly causeCode: string | undefined;

  constructor(message: string, fields: StoreErrorFields) {
    super(message, fields.cause !== undefined ? { cause: fields.cause } : undefined);
    this.code = fields.code;
    this.operation = fields.operation;
    const code = (fields.cause as { code?: unknown } | undefined)?.code;
    this.causeCode = typeof code === 'string' ? code : undefined;
  }
}

/** One schema step: runs inside a transaction that also sets `user_version` to its position + 1. */
export type Migration = (db: Connection) => void;

/**
 * Version 1. The peer count is kept in a one-row table by triggers, so `countPeers` (a gauge,
 * read on every scrape) is one row read whatever the store holds. The triggers rely on peers
 * being written with UPSERT (`ON CONFLICT DO UPDATE` fires the UPDATE triggers): `INSERT OR
 * REPLACE` deletes without firing DELETE triggers unless recursive_triggers is on, and would
 * drift the count.
 */
function createVersion1(db: Connection): void {
  db.exec(`
    CREATE TABLE peers (
      public_key TEXT PRIMARY KEY,
      allowed_ips TEXT NOT NULL,
      preshared_key TEXT,
      persistent_keepalive INTEGER NOT NULL DEFAULT 0,
      origin TEXT CHECK (origin IN ('resolver', 'push')),
      fetched_at INTEGER,
      revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
      CHECK (revoked = 1 OR (origin IS NOT NULL AND fetched_at IS NOT NULL)),
      CHECK (revoked = 0 OR (allowed_ips = '[]' AND preshared_key IS NULL))
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE replay (
      public_key TEXT PRIMARY KEY,
      last_timestamp BLOB NOT NULL CHECK (length(last_timestamp) = ${TIMESTAMP_SIZE})
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE peer_count (
      id INTEGER PRIMARY KEY CHECK (id = 0),
      configured INTEGER NOT NULL
    ) STRICT;
    INSERT INTO peer_count (id, configured) VALUES (0, 0);

    CREATE TRIGGER peers_count_insert AFTER INSERT ON peers WHEN NEW.revoked = 0
    BEGIN UPDATE peer_count SET configured = configured + 1 WHERE id = 0; END;

    CREATE TRIGGER peers_count_delete AFTER DELETE ON peers WHEN OLD.revoked = 0
    BEGIN UPDATE peer_count SET configured = configured - 1 WHERE id = 0; END;

    CREATE TRIGGER peers_count_update AFTER UPDATE OF revoked ON peers WHEN OLD.revoked <> NEW.revoked
    BEGIN UPDATE peer_count SET configured = configured + OLD.revoked - NEW.revoked WHERE id = 0; END;
  `);
}

/** The schema's history: `SCHEMA_MIGRATIONS[i]` takes version i to i + 1. Append, never edit. */
export const SCHEMA_MIGRATIONS: readonly Migration[] = [createVersion1];

function schemaVersion(db: Connection): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings `db` to version `migrations.length`, one transaction per step (a failed step leaves
 * the version before it). Each step takes the write lock first and re-reads the version, so two
 * processes opening a new file at once migrate it once. Returns the version reached.
 * @throws StoreError `ERR_JITGUARD_STORE_VERSION` if the database is newer than `migrations`.
 */
export function migrateSchema(db: Connection, migrations: readonly Migration[] = SCHEMA_MIGRATIONS): number {
  const target = migrations.length;
  const step = db.transaction((): void => {
    const version = schemaVersion(db);
    refuseNewer(version, target);
    if (version === target) return;
    migrations[version]!(db);
    db.pragma(`user_version = ${version + 1}`);
  });
  // A current database is only read: opening one takes no write lock.
  for (let version = schemaVersion(db); version !== target; version = schemaVersion(db)) {
    refuseNewer(version, target);
    step.immediate();
  }
  return target;
}

function refuseNewer(version: number, known: number): void {
  if (version > known) {
    throw new StoreError(`the store's schema is version ${version}; this jitguard knows versions up to ${known} (no downgrade: use a newer jitguard or a new file)`, {
      code: 'ERR_JITGUARD_STORE_VERSION', operation: 'open',
    });
  }
}

export interface SqliteStoreOptions {
  /** How long a write waits for another connection's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
}

const ORIGINS: ReadonlySet<string> = new Set<PeerOrigin>(['resolver', 'push']);
const GROUP_OR_OTHER = 0o077;

interface PeerRow {
  public_key: string;
  allowed_ips: string;
  preshared_key: string | null;
  persistent_keepalive: number;
  origin: PeerOrigin | null;
  fetched_at: number | null;
  revoked: 0 | 1;
}

const PEER_COLUMNS = 'public_key, allowed_ips, preshared_key, persistent_keepalive, origin, fetched_at, revoked';

/**
 * Peers, revocations and replay timestamps in one SQLite file (or `':memory:'`, for tests).
 * Every method is synchronous; after `close()` each throws a `StoreError` `ERR_JITGUARD_CLOSED`.
 */
export class SqliteStore implements Store {
  private readonly db: Connection;
  private closed = false;
  private readonly selectPeer: Database.Statement<[string], PeerRow>;
  private readonly upsertPeer: Database.Statement<[string, string, string | null, number, PeerOrigin, number]>;
  private readonly revokeConfigured: Database.Statement<[string]>;
  private readonly insertRevoked: Database.Statement<[string]>;
  private readonly deleteConfigured: Database.Statement<[string]>;
  private readonly selectTimestamp: Database.Statement<[string], Buffer>;
  private readonly advance: Database.Statement<[string, Uint8Array]>;
  private readonly selectCount: Database.Statement<[], number>;
  private readonly revokeTransaction: (key: string) => boolean;
  private readonly readTransaction: <T>(read: () => T) => T;
  private readonly writeTransaction: (write: () => void) => void;

  /**
   * Opens (creating it, mode 0600, if absent) and migrates the database at `path`.
   * @throws StoreError `ERR_JITGUARD_STORE_PERMISSIONS`, `ERR_JITGUARD_STORE_VERSION`, or
   *   `ERR_JITGUARD_STORE` when the file cannot be created or opened.
   * @throws ValidationError for a bad path or option.
   */
  constructor(path: string, options: SqliteStoreOptions = {}) {
    if (typeof path !== 'string' || path === '') throw new ValidationError('path', `expected a file path or ':memory:', got ${describe(path)}`);
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', `expected an object, got ${describe(options)}`);
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw new ValidationError('options.busyTimeoutMs', `expected a non-negative integer number of milliseconds, got ${describe(busyTimeoutMs)}`);
    }
    const inMemory = path === ':memory:';
    if (!inMemory) prepareFile(path);
    try {
      this.db = new Database(path, { fileMustExist: !inMemory, timeout: busyTimeoutMs });
    } catch (error) {
      throw storeError('open', error);
    }
    try {
      const mode = this.db.pragma('journal_mode = WAL', { simple: true });
      if (!inMemory && mode !== 'wal') throw new StoreError(`SQLite refused WAL mode (journal_mode is ${String(mode)})`, { code: 'ERR_JITGUARD_STORE', operation: 'open' });
      this.db.pragma('synchronous = NORMAL');
      migrateSchema(this.db);

      this.selectPeer = this.db.prepare(`SELECT ${PEER_COLUMNS} FROM peers WHERE public_key = ?`);
      this.upsertPeer = this.db.prepare(`
        INSERT INTO peers (public_key, allowed_ips, preshared_key, persistent_keepalive, origin, fetched_at, revoked)
        VALUES (?, ?, ?, ?, ?, ?, 0)
        ON CONFLICT (public_key) DO UPDATE SET
          allowed_ips = excluded.allowed_ips, preshared_key = excluded.preshared_key,
          persistent_keepalive = excluded.persistent_keepalive, origin = excluded.origin,
          fetched_at = excluded.fetched_at, revoked = 0`);
      this.revokeConfigured = this.db.prepare(`
        UPDATE peers SET allowed_ips = '[]', preshared_key = NULL, persistent_keepalive = 0,
          origin = NULL, fetched_at = NULL, revoked = 1
        WHERE public_key = ? AND revoked = 0`);
      this.insertRevoked = this.db.prepare(`
        INSERT INTO peers (public_key, allowed_ips, preshared_key, persistent_keepalive, origin, fetched_at, revoked)
        VALUES (?, '[]', NULL, 0, NULL, NULL, 1) ON CONFLICT (public_key) DO NOTHING`);
      this.deleteConfigured = this.db.prepare('DELETE FROM peers WHERE public_key = ? AND revoked = 0');
      this.selectTimestamp = this.db.prepare<[string], Buffer>('SELECT last_timestamp FROM replay WHERE public_key = ?').pluck();
      // BLOB comparison is memcmp (then length, equal here); TAI64N is big-endian, so byte
      // order is time order and "greater" is exactly the kernel's replay rule.
      this.advance = this.db.prepare(`
        INSERT INTO replay (public_key, last_timestamp) VALUES (?, ?)
        ON CONFLICT (public_key) DO UPDATE SET last_timestamp = excluded.last_timestamp
        WHERE excluded.last_timestamp > replay.last_timestamp`);
      this.selectCount = this.db.prepare<[], number>('SELECT configured FROM peer_count WHERE id = 0').pluck();

      this.revokeTransaction = this.db.transaction((key: string): boolean => {
        if (this.revokeConfigured.run(key).changes === 1) return true;
        this.insertRevoked.run(key);
        return false;
      });
      const read = this.db.transaction((fn: () => unknown) => fn());
      this.readTransaction = read as <T>(fn: () => T) => T;
      this.writeTransaction = this.db.transaction((fn: () => void) => fn()).immediate;
    } catch (error) {
      this.db.close();
      throw error instanceof StoreError ? error : storeError('open', error);
    }
  }

  getPeer(publicKey: string): StoredPeer | 'revoked' | null {
    checkKeyType(publicKey, 'publicKey');
    this.checkOpen('getPeer');
    let row: PeerRow | undefined;
    try {
      row = this.selectPeer.get(publicKey);
    } catch (error) {
      throw storeError('getPeer', error);
    }
    return row === undefined ? null : decodeRow(row, 'getPeer');
  }

  /** @throws ValidationError (nothing written) for an invalid configuration, origin or fetchedAt. */
  putPeer(peer: StoredPeer): void {
    const row = encodePeer(peer, 'peer');
    this.checkOpen('putPeer');
    try {
      this.upsertPeer.run(...row);
    } catch (error) {
      throw storeError('putPeer', error);
    }
  }

  revokePeer(publicKey: string): boolean {
    const key = canonicalKey(publicKey, 'publicKey');
    this.checkOpen('revokePeer');
    try {
      return this.revokeTransaction(key);
    } catch (error) {
      throw storeError('revokePeer', error);
    }
  }

  /** Keeps the key's replay timestamp: a replay must stay refused after the key comes back. */
  deletePeer(publicKey: string): void {
    checkKeyType(publicKey, 'publicKey');
    this.checkOpen('deletePeer');
    try {
      this.deleteConfigured.run(publicKey);
    } catch (error) {
      throw storeError('deletePeer', error);
    }
  }

  getLastTimestamp(publicKey: string): Uint8Array | null {
    checkKeyType(publicKey, 'publicKey');
    this.checkOpen('getLastTimestamp');
    try {
      return this.selectTimestamp.get(publicKey) ?? null;
    } catch (error) {
      throw storeError('getLastTimestamp', error);
    }
  }

  /** @throws ValidationError unless `timestamp` is 12 bytes (TAI64N) and the key is canonical. */
  advanceTimestamp(publicKey: string, timestamp: Uint8Array): boolean {
    const key = canonicalKey(publicKey, 'publicKey');
    if (!(timestamp instanceof Uint8Array)) {
      throw new ValidationError('timestamp', `expected ${TIMESTAMP_SIZE} TAI64N bytes in a Uint8Array, got ${describe(timestamp)}`);
    }
    if (timestamp.length !== TIMESTAMP_SIZE) {
      throw new ValidationError('timestamp', `expected ${TIMESTAMP_SIZE} TAI64N bytes, got ${timestamp.length}`);
    }
    this.checkOpen('advanceTimestamp');
    try {
      return this.advance.run(key, timestamp).changes === 1;
    } catch (error) {
      throw storeError('advanceTimestamp', error);
    }
  }

  /** One row read (a trigger-maintained counter), whatever the store holds. */
  countPeers(): number {
    this.checkOpen('countPeers');
    try {
      return this.selectCount.get()!;
    } catch (error) {
      throw storeError('countPeers', error);
    }
  }

  /**
   * Many keys at once, in one read transaction (a consistent snapshot): for start-up
   * reconciliation. Keys the store does not know are absent from the map. The keys are looked
   * up in sorted order, so consecutive lookups share B-tree pages (10^5 random keys in a store
   * of 10^6, on an idle 2-CPU VM: about 0.6 s sorted against 1.0 s unsorted; 500-key `IN (…)`
   * queries were no faster than this one-key statement in a loop).
   */
  getPeers(publicKeys: readonly string[]): Map<string, StoredPeer | 'revoked'> {
    if (!Array.isArray(publicKeys)) throw new ValidationError('publicKeys', `expected an array of keys, got ${describe(publicKeys)}`);
    publicKeys.forEach((key, i) => checkKeyType(key, `publicKeys[${i}]`));
    this.checkOpen('getPeers');
    const sorted = [...publicKeys].sort();
    const found = new Map<string, StoredPeer | 'revoked'>();
    try {
      this.readTransaction(() => {
        for (const key of sorted) {
          const row = this.selectPeer.get(key);
          if (row !== undefined) found.set(key, decodeRow(row, 'getPeers'));
        }
      });
    } catch (error) {
      throw error instanceof StoreError ? error : storeError('getPeers', error);
    }
    return found;
  }

  /**
   * Inserts or replaces many configurations in one transaction: all or none. Every one is
   * validated as `putPeer` validates before anything is written (a bad one throws a
   * `ValidationError` naming `peers[i]`). Rows are written in key order: a B-tree filled in
   * order touches each page once, several times faster than random keys once the table
   * outgrows SQLite's page cache (10^6 peers on an idle 2-CPU VM: ~140,000 rows/s against
   * ~32,000). Of two peers with one key, the later wins. Returns how many were written.
   */
  putPeers(peers: readonly StoredPeer[]): number {
    if (!Array.isArray(peers)) throw new ValidationError('peers', `expected an array of peers, got ${describe(peers)}`);
    this.checkOpen('putPeers');
    const rows = peers.map((peer: StoredPeer, i) => encodePeer(peer, `peers[${i}]`));
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    try {
      this.writeTransaction(() => {
        for (const row of rows) this.upsertPeer.run(...row);
      });
    } catch (error) {
      throw storeError('putPeers', error);
    }
    return rows.length;
  }

  /** Closes the database (checkpointing the WAL). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.close();
    } catch (error) {
      throw storeError('close', error);
    }
  }

  private checkOpen(operation: string): void {
    if (this.closed) throw new StoreError(`${operation}: the store is closed`, { code: 'ERR_JITGUARD_CLOSED', operation });
  }
}

/**
 * Creates the file with mode 0600 if it does not exist (O_EXCL: never another's file), and
 * refuses an existing database, -wal or -shm that group or others can access. Existing files are
 * only stat'ed, never opened: closing any descriptor of a file drops every POSIX lock this
 * process holds on it, including those of a SQLite connection already open on it.
 */
function prepareFile(path: string): void {
  try {
    closeSync(openSync(path, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw storeError('open', error);
  }
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch (error) {
      if (file !== path && (error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw storeError('open', error);
    }
    if ((mode & GROUP_OR_OTHER) !== 0) {
      throw new StoreError(`${file} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}: the store holds preshared keys and must not be accessible to group or others (chmod 600 it, and consider its keys exposed)`, {
        code: 'ERR_JITGUARD_STORE_PERMISSIONS', operation: 'open',
      });
    }
  }
}

function checkKeyType(key: unknown, path: string): asserts key is string {
  if (typeof key !== 'string') throw new ValidationError(path, `expected a base64 key string, got ${describe(key)}`);
}

type PeerParams = [string, string, string | null, number, PeerOrigin, number];

function encodePeer(peer: StoredPeer, path: string): PeerParams {
  if (typeof peer !== 'object' || peer === null) throw new ValidationError(path, `expected a stored peer, got ${describe(peer)}`);
  const { origin, fetchedAt, ...config } = peer;
  if (typeof origin !== 'string' || !ORIGINS.has(origin)) {
    throw new ValidationError(`${path}.origin`, `expected 'resolver' or 'push', got ${typeof origin === 'string' ? JSON.stringify(origin.slice(0, 32)) : describe(origin)}`);
  }
  if (!Number.isSafeInteger(fetchedAt) || fetchedAt < 0) {
    throw new ValidationError(`${path}.fetchedAt`, `expected a non-negative integer of Unix milliseconds, got ${typeof fetchedAt === 'number' ? fetchedAt : describe(fetchedAt)}`);
  }
  const valid = validatePeerConfig(config, path);
  return [valid.publicKey, JSON.stringify(valid.allowedIps), valid.presharedKey, valid.persistentKeepalive, origin, fetchedAt];
}

function decodeRow(row: PeerRow, operation: string): StoredPeer | 'revoked' {
  if (row.revoked === 1) return 'revoked';
  let allowedIps: unknown;
  try {
    allowedIps = JSON.parse(row.allowed_ips);
  } catch {
    allowedIps = undefined;
  }
  if (!Array.isArray(allowedIps) || !allowedIps.every((ip) => typeof ip === 'string')) {
    throw new StoreError(`${operation}: a peers row holds allowed_ips that are not a JSON array of strings (the database is damaged)`, { code: 'ERR_JITGUARD_STORE', operation });
  }
  return {
    publicKey: row.public_key,
    allowedIps,
    presharedKey: row.preshared_key,
    persistentKeepalive: row.persistent_keepalive,
    origin: row.origin!,
    fetchedAt: row.fetched_at!,
  };
}

/** A SQLite or file-system failure; the cause's own message names codes and columns, never values. */
function storeError(operation: string, cause: unknown): StoreError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new StoreError(`${operation}: ${detail}`, { code: 'ERR_JITGUARD_STORE', operation, cause });
}
