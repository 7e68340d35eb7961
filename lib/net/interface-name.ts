/** Interface names, checked as the kernel's dev_valid_name() would, before any system call. */
import { ValidationError } from '../errors.js';
import { describe } from '../keys.js';

/** IFNAMSIZ - 1: the longest interface name the kernel accepts. */
export const MAX_INTERFACE_NAME = 15;

/** Returns `name` if it is a valid interface name: 1..15 bytes, no '/', ':', NUL or whitespace, not '.' or '..'. */
export function validateInterfaceName(name: unknown, path = 'name'): string {
  if (typeof name !== 'string') throw new ValidationError(path, `expected an interface name string, got ${describe(name)}`);
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes > MAX_INTERFACE_NAME) {
    throw new ValidationError(path, `interface names are 1 to ${MAX_INTERFACE_NAME} bytes, got ${bytes}`);
  }
  if (name === '.' || name === '..' || /[/:\s\0]/u.test(name)) {
    throw new ValidationError(path, 'interface names cannot contain "/", ":", NUL or whitespace, nor be "." or ".."');
  }
  return name;
}
