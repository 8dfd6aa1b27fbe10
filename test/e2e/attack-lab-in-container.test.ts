/**
 * The e2e attack lab (attack-lab.test.ts, every scenario and assertion unchanged, attribution
 * included) with the agent running inside the credwatch image under the DaemonSet's settings
 * (--pid=host, --network=host, only AUDIT_CONTROL AUDIT_READ SYS_PTRACE, read-only root, the kubelet
 * pods dir and cgroup tree read-only at their host paths): lab/agent-container.ts.
 *
 * Live (kernel audit, dockerd): under the lab lock.
 *   flock /tmp/credwatch-lab.lock npx vitest run test/e2e/attack-lab-in-container.test.ts
 * The first run builds the .deb (~2 min) and the debootstrap root (~1 min, cached).
 */
import './lab/container-agent-setup';
import { afterAll } from 'vitest';
import { undoContainerSetup } from './lab/container-agent-setup';
import './attack-lab.test';

// After the lab's own afterAll (nested suite): its pods are unmounted by then.
afterAll(() => undoContainerSetup());
