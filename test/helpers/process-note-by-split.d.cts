/** Types of process-note-by-split.cjs (the split-based reference reading of a process note). */
import type { ProcessNote } from '../../src/native/process-note';
export declare function processNoteBySplit(text: string): ProcessNote | null;
