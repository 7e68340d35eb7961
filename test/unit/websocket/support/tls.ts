/**
 * A self-signed certificate made with openssl(1) for the TLS tests (Node can verify X.509 but
 * cannot issue it). A missing openssl fails the test that asked, with that said.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';

export interface SelfSigned {
  cert: string;
  key: string;
  /** SHA-256 over the DER, as `openssl x509 -fingerprint -sha256` prints it (AB:CD:…). */
  fingerprint256: string;
}

export function selfSignedCertificate(commonName = 'gateway.test'): SelfSigned {
  const dir = mkdtempSync(join(tmpdir(), 'jitguard-tls-'));
  try {
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-noenc', '-days', '2',
        '-subj', `/CN=${commonName}`, '-addext', `subjectAltName=DNS:${commonName},IP:127.0.0.1`,
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      throw new Error(`openssl(1) is needed to make the test certificate: ${(error as Error).message}`);
    }
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const key = readFileSync(join(dir, 'key.pem'), 'utf8');
    return { cert, key, fingerprint256: new X509Certificate(cert).fingerprint256 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
