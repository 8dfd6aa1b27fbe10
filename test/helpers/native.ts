/** The native addon for tests that can run without it (they skip, saying why). */
import { loadNative } from '../../src/native/binding';
import type { NativeBinding } from '../../src/native/types';

export function tryLoadNative(): { native: NativeBinding | null; reason: string | null } {
  try {
    return { native: loadNative(), reason: null };
  } catch (err) {
    return { native: null, reason: `native addon not built (npx node-gyp rebuild): ${(err as Error).message}` };
  }
}
