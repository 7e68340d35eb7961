/** Loads the recorded real initiations under test/vectors/ (see test/vectors/README.md). */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface VectorInitiation {
  packet: string;
  initiatorPublicKey: string;
  client: string;
  transport: 'ipv4' | 'ipv6';
  from: string;
  capturedAtUnixMs: number;
}
export interface VectorFile {
  file: string;
  source: string;
  producedBy: string;
  tools: Record<string, string>;
  responderPrivateKey: string;
  responderPublicKey: string;
  initiations: VectorInitiation[];
}

export const VECTOR_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../vectors');

export function loadVectors(): VectorFile[] {
  return readdirSync(VECTOR_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ file: f, ...(JSON.parse(readFileSync(join(VECTOR_DIR, f), 'utf8')) as Omit<VectorFile, 'file'>) }))
    .filter((v) => Array.isArray(v.initiations) && typeof v.responderPrivateKey === 'string');
}

export const hex = (s: string): Buffer => Buffer.from(s, 'hex');
export const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
