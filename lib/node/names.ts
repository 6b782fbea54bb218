import type { NodeConfig } from "../config/resolve.ts";

/** LABEL_NODE marks every engine object u7s creates with the node it belongs to. */
export const LABEL_NODE = "io.u7s.node";
/** LABEL_SETTINGS records, on the container, the settings it was created with (JSON). */
export const LABEL_SETTINGS = "io.u7s.settings";
/**
 * LABEL_RUN carries a token unique to one `u7s up` run: when `run` fails after the engine created
 * the container, the container is removed only if it carries this run's token (never one that a
 * concurrent command created under the same name).
 */
export const LABEL_RUN = "io.u7s.run";
/** LABEL_VERSION records the u7s version that created the container. */
export const LABEL_VERSION = "io.u7s.version";
/** LABEL_TENANT records the tenant (U7S_TENANT) of a node of tenant 1 or more; absent means tenant 0. */
export const LABEL_TENANT = "io.u7s.tenant";

/** NodeNames are the engine object names of one node; all derive from NODE_NAME, which is unique per host. */
export interface NodeNames {
  container: string;
  network: string;
  volumes: { var: string; opt: string; etc: string };
}

/** nodeNames derives the container, network and volume names of a node. */
export function nodeNames(config: Pick<NodeConfig, "nodeName">): NodeNames {
  const n = config.nodeName;
  return { container: n, network: n, volumes: { var: `${n}-var`, opt: `${n}-opt`, etc: `${n}-etc` } };
}
