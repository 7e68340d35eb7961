/**
 * The files that hold credentials: the admin token, the resolver's Bearer token and resolver
 * header files. Read at start (an unreadable or malformed one is a refusal) and again on
 * SIGHUP, so a credential is rotated by rewriting its file and signalling; a file that fails
 * to re-read keeps its previous value and the failure is reported, so a half-written file
 * cannot lock the operator out.
 *
 * The admin token is kept only as its SHA-256 digest (all bearer.ts needs); nothing here
 * returns or reports a file's content except `resolverHeaders()`, which the resolver sends.
 */
import { readFileSync } from 'node:fs';
import { parseHeaderFile, type HeaderSource } from './headers.js';
import { bearerDigest } from './bearer.js';
import { codeOf, messageOf, Refusal } from './refusal.js';

export interface SecretSources {
  adminTokenFile: string | null;
  resolverTokenFile: string | null;
  resolverHeaders: readonly HeaderSource[];
}

export interface ReloadResult {
  reloaded: string[];
  failed: Array<{ file: string; reason: string }>;
}

const MAX_FILE_BYTES = 64 * 1024;
const TOKEN = /^[\x21-\x7e]{1,4096}$/;

export class SecretFiles {
  private adminDigest: Buffer | null = null;
  private resolverToken: string | null = null;
  private readonly headerFiles = new Map<string, Array<[string, string]>>();

  private constructor(private readonly sources: SecretSources) {}

  /** Reads every file; throws a `Refusal` naming the first that cannot be used. */
  static load(sources: SecretSources): SecretFiles {
    const secrets = new SecretFiles(sources);
    for (const file of secrets.files()) {
      const failure = secrets.read(file);
      if (failure !== null) throw new Refusal(`${file.flag} ${file.path}: ${failure}`);
    }
    return secrets;
  }

  /** Re-reads every file (SIGHUP). A file that fails keeps its previous value. */
  reload(): ReloadResult {
    const result: ReloadResult = { reloaded: [], failed: [] };
    for (const file of this.files()) {
      const failure = this.read(file);
      if (failure === null) result.reloaded.push(file.path);
      else result.failed.push({ file: file.path, reason: failure });
    }
    return result;
  }

  /** SHA-256 of the admin token, or null when there is no admin token file. */
  adminTokenDigest(): Buffer | null {
    return this.adminDigest;
  }

  /** The headers to send to the resolver now: flag values, then header files, then the token. */
  resolverHeaders(): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const source of this.sources.resolverHeaders) {
      if (source.kind === 'value') headers[source.name.toLowerCase()] = source.value;
      else for (const [name, value] of this.headerFiles.get(source.path) ?? []) headers[name.toLowerCase()] = value;
    }
    if (this.resolverToken !== null) headers.authorization = `Bearer ${this.resolverToken}`;
    return headers;
  }

  private files(): Array<{ flag: string; path: string; kind: 'admin' | 'resolver-token' | 'headers' }> {
    const files: Array<{ flag: string; path: string; kind: 'admin' | 'resolver-token' | 'headers' }> = [];
    if (this.sources.adminTokenFile !== null) files.push({ flag: '--admin-token-file', path: this.sources.adminTokenFile, kind: 'admin' });
    if (this.sources.resolverTokenFile !== null) files.push({ flag: '--resolver-token-file', path: this.sources.resolverTokenFile, kind: 'resolver-token' });
    for (const source of this.sources.resolverHeaders) {
      if (source.kind === 'file') files.push({ flag: '--resolver-header', path: source.path, kind: 'headers' });
    }
    return files;
  }

  /** Reads one file into place; returns why it could not, or null. */
  private read(file: { path: string; kind: 'admin' | 'resolver-token' | 'headers' }): string | null {
    let text: string;
    try {
      const bytes = readFileSync(file.path);
      if (bytes.length > MAX_FILE_BYTES) return `larger than ${MAX_FILE_BYTES} bytes`;
      text = bytes.toString('utf8');
    } catch (error) {
      return `cannot read it (${codeOf(error) ?? messageOf(error)})`;
    }
    if (file.kind === 'headers') {
      try {
        this.headerFiles.set(file.path, parseHeaderFile(text, file.path));
      } catch (error) {
        return messageOf(error).slice(file.path.length + 1);
      }
      return null;
    }
    const token = text.trim();
    if (!TOKEN.test(token)) return 'expected one token of printable characters, no spaces (1 to 4096)';
    if (file.kind === 'admin') this.adminDigest = bearerDigest(token);
    else this.resolverToken = token;
    return null;
  }
}
