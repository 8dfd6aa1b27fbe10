/** Types of lab-lock.cjs (the lab machine's shared lock, taken by live tests and benches). */
export declare const LAB_LOCK: string;
export declare function heldByCaller(env?: NodeJS.ProcessEnv, lockPath?: string): boolean;
export declare function acquireLabLock(env?: NodeJS.ProcessEnv, lockPath?: string): Promise<() => void>;
