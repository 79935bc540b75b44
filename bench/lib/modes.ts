/**
 * The ways the publish and marcod benchmarks measure, shared by each harness and its child
 * program. (A child module runs its measurement when imported, so a harness takes only types
 * from it; values live here.)
 */

/** Publish-API paths, in the order of the report's rows (see bench/child/publishClient.ts). */
export const PUBLISH_MODES = ['echo', 'raw', 'client-unix', 'client-unix-perm', 'client-tls', 'client-tls-perm'] as const;
export type PublishMode = (typeof PUBLISH_MODES)[number];

/** Ways to run a Request-For, in the order of the report's rows (see bench/child/marcodClient.ts). */
export const MARCOD_MODES = ['raw', 'inProcess', 'rawMarcod', 'marcodClient'] as const;
export type MarcodMode = (typeof MARCOD_MODES)[number];
