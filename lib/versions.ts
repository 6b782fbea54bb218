import pkg from "../package.json" with { type: "json" };

/** VERSION is u7s's own version. */
export const VERSION: string = pkg.version;

/** KUBERNETES_VERSION is the Kubernetes release the node image pins (kindest/node). */
export const KUBERNETES_VERSION = "v1.35.0";

/** KIND_NODE_IMAGE is the pinned base image of the node (tag and digest). */
export const KIND_NODE_IMAGE =
  "docker.io/kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f";

/** CNI_PLUGINS_VERSION, HELM_VERSION, FLANNEL_VERSION are the pinned add-ons of the node image. */
export const CNI_PLUGINS_VERSION = "v1.9.0";
export const HELM_VERSION = "v4.0.4";
export const FLANNEL_VERSION = "v0.27.4";
/**
 * FLANNEL_IMAGES are the images Flannel's chart (FLANNEL_VERSION) runs: the only images a cluster
 * pulls that the node image (kindest/node, which carries Kubernetes' own) lacks. `u7s image save`
 * puts them in a bundle by default.
 */
export const FLANNEL_IMAGES: readonly string[] = [`ghcr.io/flannel-io/flannel:${FLANNEL_VERSION}`, "ghcr.io/flannel-io/flannel-cni-plugin:v1.8.0-flannel1"];
