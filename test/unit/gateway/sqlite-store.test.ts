import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ValidationError } from '../../../lib/errors.js';
import { SCHEMA_MIGRATIONS, SqliteStore, StoreError, migrateSchema, type Migration } from '../../../lib/gateway/sqlite-store.js';
import type { StoredPeer } from '../../../lib/gateway/types.js';
import { numberedPeer, timestampOf } from './support/store-rows.js';

const WRITER = fileURLToPath(new URL('./support/store-writer.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const PSK = Buffer.alloc(32, 0x5a).toString('base64');

let dir: string;
let files = 0;
before(() => { dir = mkdtempSync(join(tmpdir(), 'jitguard-store-')); });
after(() => { rmSync(dir, { recursive: true, force: true }); });
const freshPath = (): string => join(dir, `store-${++files}.db`);

const peer = (n: number, fields: Partial<StoredPeer> = {}): StoredPeer => ({ ...numberedPeer(7, n), ...fields });

/** A raw connection on the store's file, to look at rows as SQLite holds them. */
function raw(path: string): Database.Database {
  return new Database(path, { fileMustExist: true });
}

function configuredRows(db: Database.Database): number {
  return db.prepare('SELECT count(*) FROM peers WHERE revoked = 0').pluck().get() as number;
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

function isStoreError(code: string, causeCode?: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof StoreError, `expected a StoreError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (causeCode !== undefined) assert.equal(error.causeCode, causeCode);
    return true;
  };
}

describe('SqliteStore: peers', () => {
  it('round-trips a configuration in canonical form, and says null for a key it does not know', () => {
    const store = new SqliteStore(':memory:');
    const p = peer(1, { allowedIps: ['10.1.2.3/24', 'fd00::7/128'], presharedKey: PSK, persistentKeepalive: 25, origin: 'resolver', fetchedAt: 1234 });
    store.putPeer(p);
    assert.deepEqual(store.getPeer(p.publicKey), { ...p, allowedIps: ['10.1.2.0/24', 'fd00::7/128'] });
    assert.equal(store.getPeer(peer(2).publicKey), null);
    assert.equal(store.countPeers(), 1);
    store.putPeer({ ...p, allowedIps: [], presharedKey: null, persistentKeepalive: 0, origin: 'push', fetchedAt: 99 });
    assert.deepEqual(store.getPeer(p.publicKey), { ...p, allowedIps: [], presharedKey: null, persistentKeepalive: 0, origin: 'push', fetchedAt: 99 }, 'replaced, not merged');
    assert.equal(store.countPeers(), 1);
    store.close();
  });

  it('refuses an invalid configuration with a ValidationError naming the field, writes nothing, never echoes the preshared key', () => {
    const store = new SqliteStore(':memory:');
    const cases: Array<[Partial<StoredPeer> & Record<string, unknown>, string]> = [
      [{ allowedIps: ['10.0.0.300/32'] }, 'peer.allowedIps[0]'],
      [{ presharedKey: `${PSK.slice(0, 40)}!!!=` }, 'peer.presharedKey'],
      [{ persistentKeepalive: 70000 }, 'peer.persistentKeepalive'],
      [{ origin: 'gossip' as never }, 'peer.origin'],
      [{ fetchedAt: -1 }, 'peer.fetchedAt'],
      [{ fetchedAt: 1.5 }, 'peer.fetchedAt'],
      [{ publicKey: 'short' }, 'peer.publicKey'],
      [{ allowedIPs: ['10.0.0.1/32'] }, 'peer.allowedIPs'],
    ];
    for (const [fields, path] of cases) {
      const bad = { ...peer(3), ...fields } as StoredPeer;
      assert.throws(() => store.putPeer(bad), (error: unknown) => {
        assert.ok(error instanceof ValidationError, String(error));
        assert.equal(error.path, path);
        assert.ok(!error.message.includes(PSK.slice(0, 40)), 'no preshared key in the message');
        return true;
      });
    }
    assert.equal(store.getPeer(peer(3).publicKey), null);
    assert.equal(store.countPeers(), 0);
    store.close();
  });

  it('upserting a revoked key clears the revocation', () => {
    const store = new SqliteStore(':memory:');
    const p = peer(4, { presharedKey: PSK });
    store.putPeer(p);
    assert.equal(store.revokePeer(p.publicKey), true);
    assert.equal(store.getPeer(p.publicKey), 'revoked');
    store.putPeer(p);
    assert.deepEqual(store.getPeer(p.publicKey), p);
    assert.equal(store.countPeers(), 1);
    store.close();
  });

  it('revoking keeps no configuration: the raw row has no preshared key and no allowed IPs', () => {
    const path = freshPath();
    const store = new SqliteStore(path);
    const p = peer(5, { presharedKey: PSK, allowedIps: ['10.5.0.0/16'], persistentKeepalive: 25 });
    store.putPeer(p);
    assert.equal(raw(path).prepare('SELECT preshared_key FROM peers').pluck().get(), PSK, 'the raw read sees what was written');
    assert.equal(store.revokePeer(p.publicKey), true, 'it held a configuration');
    assert.equal(store.revokePeer(p.publicKey), false, 'already revoked');
    assert.equal(store.revokePeer(peer(6).publicKey), false, 'unknown key: revoked, with nothing to drop');
    const db = raw(path);
    assert.deepEqual(db.prepare('SELECT * FROM peers WHERE public_key = ?').get(p.publicKey), {
      public_key: p.publicKey, allowed_ips: '[]', preshared_key: null, persistent_keepalive: 0, origin: null, fetched_at: null, revoked: 1,
    });
    assert.equal(store.getPeer(peer(6).publicKey), 'revoked');
    assert.throws(() => db.prepare("UPDATE peers SET preshared_key = 'x' WHERE revoked = 1").run(), /CHECK constraint/, 'the schema itself refuses a revoked row with a key');
    db.close();
    store.close();
  });

  it('deletePeer forgets a configuration but keeps a revocation', () => {
    const store = new SqliteStore(':memory:');
    const [configured, revoked] = [peer(7), peer(8)];
    store.putPeer(configured);
    store.putPeer(revoked);
    store.revokePeer(revoked.publicKey);
    store.deletePeer(configured.publicKey);
    store.deletePeer(revoked.publicKey);
    store.deletePeer(peer(9).publicKey);
    assert.equal(store.getPeer(configured.publicKey), null);
    assert.equal(store.getPeer(revoked.publicKey), 'revoked');
    assert.equal(store.countPeers(), 0);
    store.close();
  });

  it('a row that does not decode is a StoreError, not a crash or garbage', () => {
    const path = freshPath();
    const store = new SqliteStore(path);
    const [broken, fine] = [peer(10, { presharedKey: PSK }), peer(11)];
    store.putPeers([broken, fine]);
    const db = raw(path);
    db.prepare("UPDATE peers SET allowed_ips = '[\"10.0.0.1/32\"' WHERE public_key = ?").run(broken.publicKey);
    db.close();
    for (const read of [() => store.getPeer(broken.publicKey), () => store.getPeers([fine.publicKey, broken.publicKey])]) {
      assert.throws(read, (error: unknown) => {
        assert.ok(isStoreError('ERR_JITGUARD_STORE')(error));
        assert.match((error as Error).message, /allowed_ips/);
        assert.ok(!(error as Error).message.includes(PSK) && !(error as Error).message.includes(broken.publicKey));
        return true;
      });
    }
    assert.deepEqual(store.getPeer(fine.publicKey), fine, 'other rows still read');
    store.close();
  });
});

describe('SqliteStore: replay timestamps', () => {
  it('accepts strictly increasing timestamps and refuses equal and smaller ones', () => {
    const store = new SqliteStore(':memory:');
    const key = peer(20).publicKey;
    assert.equal(store.getLastTimestamp(key), null);
    assert.equal(store.advanceTimestamp(key, timestampOf(100)), true, 'first');
    assert.equal(store.advanceTimestamp(key, timestampOf(100)), false, 'equal');
    assert.equal(store.advanceTimestamp(key, timestampOf(99)), false, 'smaller');
    assert.equal(store.advanceTimestamp(key, timestampOf(101)), true, 'greater');
    assert.deepEqual(Buffer.from(store.getLastTimestamp(key)!), Buffer.from(timestampOf(101)));
    // Byte order is time order: a later second with fewer nanoseconds is later.
    const a = Buffer.from(timestampOf(200)); a.writeUInt32BE(999_999_999, 8);
    const b = Buffer.from(timestampOf(201)); b.writeUInt32BE(0, 8);
    assert.equal(store.advanceTimestamp(key, a), true);
    assert.equal(store.advanceTimestamp(key, b), true);
    assert.equal(store.advanceTimestamp(key, a), false);
    assert.equal(store.advanceTimestamp(peer(21).publicKey, timestampOf(1)), true, 'per key');
    store.close();
  });

  it('refuses a timestamp that is not 12 bytes with a ValidationError naming both lengths', () => {
    const store = new SqliteStore(':memory:');
    const key = peer(22).publicKey;
    for (const length of [0, 11, 13]) {
      assert.throws(() => store.advanceTimestamp(key, new Uint8Array(length)), (error: unknown) => {
        assert.ok(error instanceof ValidationError);
        assert.equal(error.path, 'timestamp');
        assert.match(error.message, new RegExp(`expected 12 TAI64N bytes, got ${length}$`));
        return true;
      });
    }
    assert.throws(() => store.advanceTimestamp(key, 'x'.repeat(12) as never), ValidationError);
    assert.throws(() => store.advanceTimestamp('not a key', timestampOf(1)), ValidationError);
    assert.equal(store.getLastTimestamp(key), null);
    store.close();
  });

  it('survives revocation, deletion and a reopen', () => {
    const path = freshPath();
    let store = new SqliteStore(path);
    const p = peer(23);
    store.putPeer(p);
    store.advanceTimestamp(p.publicKey, timestampOf(50));
    store.revokePeer(p.publicKey);
    store.putPeer(p);
    store.deletePeer(p.publicKey);
    store.close();
    store = new SqliteStore(path);
    assert.equal(store.advanceTimestamp(p.publicKey, timestampOf(50)), false);
    assert.equal(store.advanceTimestamp(p.publicKey, timestampOf(51)), true);
    store.close();
  });

  it('two instances on one file: each compares against what the other committed', () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore(path), new SqliteStore(path)];
    const key = peer(24).publicKey;
    assert.equal(a.advanceTimestamp(key, timestampOf(5)), true);
    assert.equal(b.advanceTimestamp(key, timestampOf(3)), false);
    assert.equal(b.advanceTimestamp(key, timestampOf(9)), true);
    assert.equal(a.advanceTimestamp(key, timestampOf(6)), false, 'a has no stale view of the row');
    assert.deepEqual(Buffer.from(a.getLastTimestamp(key)!), Buffer.from(timestampOf(9)));
    a.close();
    b.close();
  });

  it('two processes offering the same timestamps: each is accepted once, the greatest is kept', { timeout: 60_000 }, async () => {
    const path = freshPath();
    new SqliteStore(path).close();
    const key = peer(25).publicKey;
    const count = 5000;
    const children = [0, 1].map(() => spawnWriter(['timestamps', path, key, String(count)]));
    await Promise.all(children.map((c) => c.line('ready')));
    for (const c of children) c.process.stdin.end('go\n');
    const results = await Promise.all(children.map(async (c) => JSON.parse(await c.nextLine()) as { accepted: number }));
    await Promise.all(children.map((c) => c.exited));
    const store = new SqliteStore(path);
    assert.deepEqual(Buffer.from(store.getLastTimestamp(key)!), Buffer.from(timestampOf(count)), 'the greatest offered');
    // A read-then-write would let both accept the same timestamp (a replay admitted twice).
    const accepted = results[0]!.accepted + results[1]!.accepted;
    assert.ok(accepted <= count, `${accepted} acceptances of ${count} distinct timestamps`);
    store.close();
  });
});

describe('SqliteStore: countPeers', () => {
  it('stays exact across put, replace, revoke, re-upsert, delete and batches with repeats', () => {
    const path = freshPath();
    const store = new SqliteStore(path);
    const db = raw(path);
    let seed = 12345;
    const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    for (let step = 0; step < 3000; step++) {
      const p = peer(random(60));
      switch (random(5)) {
        case 0: case 1: store.putPeer(p); break;
        case 2: store.revokePeer(p.publicKey); break;
        case 3: store.deletePeer(p.publicKey); break;
        default: store.putPeers([p, peer(random(60)), p]);
      }
      if (step % 50 === 0) assert.equal(store.countPeers(), configuredRows(db), `after step ${step}`);
    }
    assert.equal(store.countPeers(), configuredRows(db));
    db.close();
    store.close();
  });
});

describe('SqliteStore: bulk', () => {
  it('getPeers answers many keys, revoked ones as revoked, unknown ones absent', () => {
    const store = new SqliteStore(':memory:');
    const peers = Array.from({ length: 1500 }, (_, i) => peer(100 + i));
    assert.equal(store.putPeers(peers), 1500);
    store.revokePeer(peers[3]!.publicKey);
    const unknown = peer(99_999).publicKey;
    const found = store.getPeers([unknown, ...peers.map((p) => p.publicKey)]);
    assert.equal(found.size, 1500);
    assert.equal(found.has(unknown), false);
    assert.equal(found.get(peers[3]!.publicKey), 'revoked');
    assert.deepEqual(found.get(peers[1499]!.publicKey), peers[1499]);
    assert.deepEqual(store.getPeers([]), new Map());
    store.close();
  });

  it('putPeers: of two peers with one key, the later wins', () => {
    const store = new SqliteStore(':memory:');
    store.putPeers([peer(1, { fetchedAt: 1 }), peer(2), peer(1, { fetchedAt: 2 })]);
    assert.equal((store.getPeer(peer(1).publicKey) as StoredPeer).fetchedAt, 2);
    assert.equal(store.countPeers(), 2);
    store.close();
  });

  it('putPeers is all or none: one invalid peer writes nothing', () => {
    const store = new SqliteStore(':memory:');
    const peers = [peer(1), peer(2), { ...peer(3), allowedIps: ['nope'] }, peer(4)];
    assert.throws(() => store.putPeers(peers), (error: unknown) => error instanceof ValidationError && error.path === 'peers[2].allowedIps[0]');
    assert.equal(store.countPeers(), 0);
    assert.equal(store.getPeer(peer(1).publicKey), null);
    store.close();
  });
});

describe('SqliteStore: lifecycle and failures', () => {
  it('close is idempotent; every call after it is a StoreError ERR_JITGUARD_CLOSED', () => {
    const store = new SqliteStore(':memory:');
    store.close();
    store.close();
    const key = peer(1).publicKey;
    const calls = [
      () => store.getPeer(key), () => store.putPeer(peer(1)), () => store.revokePeer(key), () => store.deletePeer(key),
      () => store.getLastTimestamp(key), () => store.advanceTimestamp(key, timestampOf(1)), () => store.countPeers(),
      () => store.getPeers([key]), () => store.putPeers([peer(1)]),
    ];
    for (const call of calls) assert.throws(call, isStoreError('ERR_JITGUARD_CLOSED'));
  });

  it('a lock held past busyTimeoutMs is a StoreError SQLITE_BUSY, and the store works once it is released', () => {
    const path = freshPath();
    const store = new SqliteStore(path, { busyTimeoutMs: 0 });
    const other = raw(path);
    other.exec('BEGIN IMMEDIATE');
    assert.throws(() => store.putPeer(peer(1)), isStoreError('ERR_JITGUARD_STORE', 'SQLITE_BUSY'));
    assert.throws(() => store.advanceTimestamp(peer(1).publicKey, timestampOf(1)), isStoreError('ERR_JITGUARD_STORE', 'SQLITE_BUSY'));
    assert.equal(store.getPeer(peer(1).publicKey), null, 'readers are not blocked in WAL mode');
    other.exec('ROLLBACK');
    other.close();
    store.putPeer(peer(1));
    assert.equal(store.countPeers(), 1);
    store.close();
  });

  it('a file that is not a database is a StoreError SQLITE_NOTADB', () => {
    const path = freshPath();
    writeFileSync(path, Buffer.alloc(8192, 0x41), { mode: 0o600 });
    assert.throws(() => new SqliteStore(path), isStoreError('ERR_JITGUARD_STORE', 'SQLITE_NOTADB'));
  });

  it('a missing directory is a StoreError with the system code', () => {
    assert.throws(() => new SqliteStore(join(dir, 'absent', 'x.db')), isStoreError('ERR_JITGUARD_STORE', 'ENOENT'));
  });

  it('refuses a bad path or option with a ValidationError', () => {
    assert.throws(() => new SqliteStore('' as string), ValidationError);
    assert.throws(() => new SqliteStore(42 as never), ValidationError);
    assert.throws(() => new SqliteStore(':memory:', { busyTimeoutMs: -1 }), ValidationError);
  });
});

describe('SqliteStore: file modes', () => {
  it('creates the database 0600 whatever the umask, and SQLite gives -wal and -shm no more', () => {
    const previous = process.umask(0);
    try {
      const path = freshPath();
      const store = new SqliteStore(path);
      store.putPeer(peer(1, { presharedKey: PSK }));
      assert.equal(modeOf(path), 0o600);
      assert.ok(existsSync(`${path}-wal`) && existsSync(`${path}-shm`), 'WAL mode made both files');
      assert.equal(modeOf(`${path}-wal`) & 0o077, 0);
      assert.equal(modeOf(`${path}-shm`) & 0o077, 0);
      store.close();
    } finally {
      process.umask(previous);
    }
  });

  it('refuses a database, -wal or -shm that group or others can access, and leaves it as it was', () => {
    for (const [suffix, mode] of [['', 0o644], ['', 0o620], ['-wal', 0o604], ['-shm', 0o640]] as const) {
      const path = freshPath();
      new SqliteStore(path).close();
      if (suffix !== '') writeFileSync(`${path}${suffix}`, '');
      chmodSync(`${path}${suffix}`, mode);
      assert.throws(() => new SqliteStore(path), (error: unknown) => {
        assert.ok(isStoreError('ERR_JITGUARD_STORE_PERMISSIONS')(error));
        assert.match((error as Error).message, new RegExp(`mode ${mode.toString(8).padStart(4, '0')}`));
        return true;
      }, `${suffix || 'database'} ${mode.toString(8)}`);
      assert.equal(modeOf(`${path}${suffix}`), mode, 'not tightened behind the operator\'s back');
      chmodSync(`${path}${suffix}`, 0o600);
      new SqliteStore(path).close();
    }
  });
});

describe('SqliteStore: schema migrations', () => {
  it('migrates an empty file to the current version: tables, counter and triggers', () => {
    const path = freshPath();
    writeFileSync(path, '', { mode: 0o600 });
    new SqliteStore(path).close();
    const db = raw(path);
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_MIGRATIONS.length);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal', 'WAL is persistent in the file');
    const names = db.prepare("SELECT type || ' ' || name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY 1").pluck().all();
    assert.deepEqual(names, [
      'table peer_count', 'table peers', 'table replay',
      'trigger peers_count_delete', 'trigger peers_count_insert', 'trigger peers_count_update',
    ]);
    db.close();
  });

  it('reopening a current database runs no migration', () => {
    const path = freshPath();
    const store = new SqliteStore(path);
    store.putPeer(peer(1));
    store.close();
    let ran = 0;
    const db = raw(path);
    const counting = SCHEMA_MIGRATIONS.map((m): Migration => (d) => { ran++; m(d); });
    assert.equal(migrateSchema(db, counting), SCHEMA_MIGRATIONS.length);
    assert.equal(ran, 0);
    db.close();
    assert.equal(new SqliteStore(path).countPeers(), 1);
  });

  it('opening a current database takes no write lock: it opens while another connection writes', () => {
    const path = freshPath();
    new SqliteStore(path).close();
    const other = raw(path);
    other.exec('BEGIN IMMEDIATE');
    const store = new SqliteStore(path, { busyTimeoutMs: 0 });
    assert.equal(store.countPeers(), 0);
    store.close();
    other.exec('ROLLBACK');
    other.close();
  });

  it('refuses a database newer than the code, without touching it', () => {
    const path = freshPath();
    new SqliteStore(path).close();
    const newer = SCHEMA_MIGRATIONS.length + 1;
    let db = raw(path);
    db.pragma(`user_version = ${newer}`);
    db.close();
    assert.throws(() => new SqliteStore(path), (error: unknown) => {
      assert.ok(isStoreError('ERR_JITGUARD_STORE_VERSION')(error));
      assert.match((error as Error).message, new RegExp(`version ${newer}; this jitguard knows versions up to ${SCHEMA_MIGRATIONS.length}`));
      return true;
    });
    db = raw(path);
    assert.equal(db.pragma('user_version', { simple: true }), newer);
    db.close();
  });

  it('a v2 migration is one more function: the runner applies it to a v1 database and keeps the data', () => {
    const path = freshPath();
    const store = new SqliteStore(path);
    store.putPeer(peer(1));
    store.close();
    const addNote: Migration = (d) => { d.exec("ALTER TABLE peers ADD COLUMN note TEXT NOT NULL DEFAULT ''"); };
    const db = raw(path);
    assert.equal(migrateSchema(db, [...SCHEMA_MIGRATIONS, addNote]), SCHEMA_MIGRATIONS.length + 1);
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_MIGRATIONS.length + 1);
    assert.deepEqual(db.prepare('SELECT public_key, note FROM peers').all(), [{ public_key: peer(1).publicKey, note: '' }]);
    db.close();
    assert.throws(() => new SqliteStore(path), isStoreError('ERR_JITGUARD_STORE_VERSION'), 'and this code now refuses it');
  });

  it('runs every step from version 0, each in its own transaction: a failing step leaves the version before it', () => {
    const db = new Database(':memory:');
    const steps: string[] = [];
    const v2: Migration = (d) => { steps.push('v2'); d.exec('CREATE TABLE half_done (x INTEGER)'); throw new Error('v2 failed'); };
    assert.throws(() => migrateSchema(db, [(d) => { steps.push('v1'); SCHEMA_MIGRATIONS[0]!(d); }, v2]), /v2 failed/);
    assert.deepEqual(steps, ['v1', 'v2']);
    assert.equal(db.pragma('user_version', { simple: true }), 1);
    assert.equal(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'").pluck().get(), 0, 'rolled back');
    assert.equal(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'peers'").pluck().get(), 1, 'v1 kept');
    db.close();
  });
});

describe('SqliteStore: crashes and scale', () => {
  it('a writer SIGKILLed in the middle of a big transaction leaves a sound database holding exactly what was committed', { timeout: 120_000 }, async () => {
    const path = freshPath();
    const committed = 1000;
    const writer = spawnWriter(['kill', path, String(committed), '100000']);
    await writer.line('committed');
    const walAtCommit = statSync(`${path}-wal`).size;
    await writer.line('writing');
    // Killed once the open transaction has spilled pages into the WAL: the kill lands mid-write.
    const walAtKill = await new Promise<number>((resolve, reject) => {
      const poll = setInterval(() => {
        const size = statSync(`${path}-wal`).size;
        if (size > walAtCommit + (1 << 20)) {
          clearInterval(poll);
          writer.process.kill('SIGKILL');
          resolve(size);
        }
      }, 1);
      writer.exited.then(() => { clearInterval(poll); reject(new Error('the writer finished its transaction before it could be killed')); }, reject);
    });
    const { signal } = await writer.exited.catch((e: { signal: string }) => e);
    assert.equal(signal, 'SIGKILL');
    assert.ok(walAtKill > walAtCommit, 'uncommitted frames were on disk');
    const opened = performance.now();
    const store = new SqliteStore(path);
    const openMs = performance.now() - opened;
    const db = raw(path);
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    assert.equal(db.prepare('SELECT count(*) FROM peers').pluck().get(), committed);
    assert.equal(store.countPeers(), committed);
    assert.deepEqual(store.getPeer(numberedPeer(1, committed - 1).publicKey), numberedPeer(1, committed - 1));
    assert.equal(store.getPeer(numberedPeer(2, 0).publicKey), null, 'nothing of the killed transaction');
    store.putPeer(numberedPeer(2, 0));
    assert.equal(store.countPeers(), committed + 1, 'and it takes writes');
    db.close();
    store.close();
    process.stderr.write(`# killed writer: WAL ${walAtCommit} → ${walAtKill} bytes at the kill, reopened in ${openMs.toFixed(1)} ms\n`);
  });

  it('10^6 peers: open stays fast and countPeers is one row read', { timeout: 600_000 }, (t) => {
    const path = freshPath();
    const n = 1_000_000;
    let store = new SqliteStore(path);
    const peers = Array.from({ length: n }, (_, i) => numberedPeer(3, i * 7919 % n));
    let start = performance.now();
    let cpu = process.cpuUsage();
    store.putPeers(peers);
    const fillMs = performance.now() - start;
    const fillCpuMs = cpuMs(cpu);
    store.close();

    start = performance.now();
    store = new SqliteStore(path);
    const openMs = performance.now() - start;
    assert.equal(store.countPeers(), n);

    start = performance.now();
    for (let i = 0; i < 1000; i++) store.countPeers();
    const countUs = (performance.now() - start);
    const db = raw(path);
    start = performance.now();
    assert.equal(configuredRows(db), n);
    const scanMs = performance.now() - start;
    db.close();

    const sample = Array.from({ length: 100_000 }, (_, i) => peers[(i * 104_729) % n]!.publicKey);
    start = performance.now();
    cpu = process.cpuUsage();
    const found = store.getPeers(sample);
    const getPeersMs = performance.now() - start;
    const getPeersCpuMs = cpuMs(cpu);
    assert.equal(found.size, 100_000);
    store.close();

    const report = `10^6 peers: putPeers ${Math.round(n / fillMs * 1000)} rows/s (${(fillMs / 1000).toFixed(1)} s wall, ${(fillCpuMs / 1000).toFixed(1)} s CPU); ` +
      `open ${openMs.toFixed(1)} ms; countPeers ${countUs.toFixed(1)} µs mean over 1000 calls (a count(*) scan: ${scanMs.toFixed(0)} ms); ` +
      `getPeers of 10^5 keys ${getPeersMs.toFixed(0)} ms wall, ${getPeersCpuMs.toFixed(0)} ms CPU`;
    t.diagnostic(report);
    process.stderr.write(`# ${report}\n`);
    assert.ok(openMs < 250, `open took ${openMs.toFixed(1)} ms`);
    assert.ok(countUs < 100, `countPeers took ${countUs.toFixed(1)} µs`);
    assert.ok(countUs / 1000 < scanMs / 100, 'one count read costs under 1% of a scan');
  });
});

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

interface Writer {
  process: ChildProcessWithoutNullStreams;
  /** Resolves when the child prints exactly `text` (lines before it are skipped). */
  line(text: string): Promise<void>;
  nextLine(): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnWriter(args: string[]): Writer {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, ...args], { cwd: REPO, stdio: 'pipe' });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const lines = createInterface({ input: child.stdout });
  const queue: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  lines.on('line', (text) => { const w = waiting.shift(); if (w) w(text); else queue.push(text); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('exit', (code, signal) => {
      if (code === 0 || signal !== null) resolve({ code, signal });
      else reject(new Error(`store-writer exited with ${code}: ${stderr}`));
    });
  });
  const nextLine = (): Promise<string> => {
    const ready = queue.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise<string>((resolve, reject) => { waiting.push(resolve); exited.then(() => reject(new Error(`store-writer exited before a line: ${stderr}`)), reject); });
  };
  return {
    process: child,
    async line(text) { for (;;) if (await nextLine() === text) return; },
    nextLine,
    exited,
  };
}
