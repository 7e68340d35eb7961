// The capture API as the tests use it (from lib/capture, the module that owns it).
export * from '../../../lib/capture/index.js';
export * from '../../../lib/capture/bpf.js';
export { ValidationError as ValidationErrorLike } from '../../../lib/errors.js';
