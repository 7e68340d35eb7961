/**
 * `GatewayError`: what the gateway reports through its 'error' event and its rejected calls.
 * `code` is a stable string (`ERR_JITGUARD_NO_PRIVATE_KEY`, or the code of the error underneath:
 * `ENODEV`, `ETIMEDOUT`, `ERR_JITGUARD_STORE`, …), `stage` names where it happened
 * (`start`, `knock`, `settle`, `evict`, `capture`, or the method called), and `cause` is the
 * original error. Messages name stages and codes, never a key.
 */
export interface GatewayErrorFields {
  code: string;
  stage: string;
  cause?: unknown;
}

export class GatewayError extends Error {
  override name = 'GatewayError';
  readonly code: string;
  readonly stage: string;

  constructor(message: string, fields: GatewayErrorFields) {
    super(message, fields.cause !== undefined ? { cause: fields.cause } : undefined);
    this.code = fields.code;
    this.stage = fields.stage;
  }
}
