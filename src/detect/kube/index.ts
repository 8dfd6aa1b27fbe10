/** Public surface of the Kubernetes audit detector (rules K1-K8). */
export { createKubeDetector, kubeContext } from './detector';
export type { KubeDetector, KubeDetectorOptions, KubeDetectorStats } from './detector';
export { loadKubeRules, parseKubeRules, defaultKubeRuleFiles, KubeRuleError } from './rules';
export type { KubeRule } from './rules';
export { execCommand, podSpecOf } from './kinds';
export { isSystemPrincipal } from './exclusions';
