/**
 * deploy/kubernetes/credwatch.yaml, read as objects, and turned into the `docker run` flags that give
 * a container the same host namespaces, capabilities and mounts: the image tests run the agent with
 * exactly what the DaemonSet asks for, so the manifest and what was tested cannot drift apart.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { REPO_ROOT } from './daemon';

export const MANIFEST = path.join(REPO_ROOT, 'deploy/kubernetes/credwatch.yaml');

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  mountPropagation?: string;
}
export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string; defaultMode?: number };
}
export interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value: string }[];
  securityContext?: {
    runAsUser?: number;
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: { httpGet?: { host?: string; path: string; port: number | string } };
  volumeMounts?: VolumeMount[];
}
export interface PodSpec {
  hostPID?: boolean;
  hostNetwork?: boolean;
  tolerations?: { operator?: string; key?: string; effect?: string }[];
  containers: Container[];
  volumes?: Volume[];
}
export interface Manifest {
  docs: { kind: string; metadata: { name: string }; [k: string]: unknown }[];
  daemonSet: { spec: { template: { spec: PodSpec } } } & Record<string, unknown>;
  configMap: { data: Record<string, string> } & Record<string, unknown>;
  pod: PodSpec;
  agent: Container;
}

export function loadManifest(file = MANIFEST): Manifest {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS() as Manifest['docs'][number]);
  const find = (kind: string): Record<string, unknown> => {
    const d = docs.find((x) => x.kind === kind);
    if (!d) throw new Error(`${file}: no ${kind}`);
    return d;
  };
  const daemonSet = find('DaemonSet') as Manifest['daemonSet'];
  const pod = daemonSet.spec.template.spec;
  const agent = pod.containers[0];
  if (!agent) throw new Error(`${file}: the DaemonSet has no container`);
  return { docs, daemonSet, configMap: find('ConfigMap') as Manifest['configMap'], pod, agent };
}

export interface DockerRunOptions {
  /** Host directory standing in for each configMap volume (its files become the mount). */
  configDir: string;
  /** Host directory standing in for the state hostPath (tests use a temp dir, not /var/lib/credwatch). */
  stateDir?: string;
}

/** `docker run` flags equivalent to the DaemonSet's pod settings for its first container. */
export function dockerRunArgs(m: Manifest, opts: DockerRunOptions): string[] {
  const args: string[] = [];
  if (m.pod.hostPID) args.push('--pid=host');
  if (m.pod.hostNetwork) args.push('--network=host');
  const sc = m.agent.securityContext ?? {};
  if (sc.privileged) args.push('--privileged');
  for (const c of sc.capabilities?.drop ?? []) args.push(`--cap-drop=${c}`);
  for (const c of sc.capabilities?.add ?? []) args.push(`--cap-add=${c}`);
  if (sc.allowPrivilegeEscalation === false) args.push('--security-opt=no-new-privileges');
  if (sc.readOnlyRootFilesystem) args.push('--read-only');
  if (sc.runAsUser !== undefined) args.push(`--user=${sc.runAsUser}`);
  for (const e of m.agent.env ?? []) args.push('-e', `${e.name}=${e.value}`);
  const limit = m.agent.resources?.limits?.memory;
  if (limit) args.push(`--memory=${limit.replace(/i$/, '').toLowerCase()}`);
  for (const vm of m.agent.volumeMounts ?? []) {
    const vol = (m.pod.volumes ?? []).find((v) => v.name === vm.name);
    if (!vol) throw new Error(`volumeMount ${vm.name} has no volume`);
    let src: string;
    if (vol.configMap) src = opts.configDir;
    else if (vol.hostPath) src = vol.hostPath.path === '/var/lib/credwatch' && opts.stateDir ? opts.stateDir : vol.hostPath.path;
    else throw new Error(`volume ${vm.name}: only hostPath and configMap are mapped to docker`);
    // HostToContainer is rslave: mounts made on the host later (pod token tmpfs) appear inside.
    const propagation = vm.mountPropagation === 'HostToContainer' ? ',bind-propagation=rslave' : vm.mountPropagation === 'Bidirectional' ? ',bind-propagation=rshared' : '';
    args.push('--mount', `type=bind,src=${src},dst=${vm.mountPath}${vm.readOnly ? ',readonly' : ''}${propagation}`);
  }
  return args;
}
