import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import dockerfile from "../assets/Dockerfile" with { type: "text" };
import flannelRules from "../assets/90-flannel.rules" with { type: "text" };
import entrypoint from "../assets/u7s-entrypoint.sh" with { type: "text" };
import syncExternalIp from "../assets/u7s-sync-external-ip.sh" with { type: "text" };
import vxlanCsum from "../assets/u7s-vxlan-csum.sh" with { type: "text" };
import vxlanCsumUnit from "../assets/u7s-vxlan-csum.service" with { type: "text" };
import { KUBERNETES_VERSION } from "./versions.ts";

/** DOCKERFILE is the node image's Dockerfile (assets/Dockerfile). */
export const DOCKERFILE: string = dockerfile;
/** ENTRYPOINT_SCRIPT is the node's first process (assets/u7s-entrypoint.sh). */
export const ENTRYPOINT_SCRIPT: string = entrypoint;
/** FLANNEL_RULES is the udev rule that fixes Flannel's VXLAN checksums (assets/90-flannel.rules). */
export const FLANNEL_RULES: string = flannelRules;

/** SYNC_EXTERNAL_IP_SCRIPT keeps nodes' ExternalIP in sync (assets/u7s-sync-external-ip.sh); not part of the image: u7s hands it to the node. */
export const SYNC_EXTERNAL_IP_SCRIPT: string = syncExternalIp;

/** NODE_IMAGE_REPO is the local name of the built node image. */
export const NODE_IMAGE_REPO = "localhost/u7s-node";
/** SAVED_HOSTS_FILE is where the join script saves control-plane host entries in the node; the entrypoint restores them into /etc/hosts on every start. */
export const SAVED_HOSTS_FILE = "/etc/u7s/hosts";
/**
 * UPSTREAM_HOSTS_FILE is where upstream Usernetes keeps the control plane's `HOST_IP  NODE_NAME` in a
 * worker node (its join-command writes it, its entrypoint appends it to /etc/hosts on every start);
 * u7s writes it too, so either entrypoint restores the entry.
 */
export const UPSTREAM_HOSTS_FILE = "/etc/hosts.u7s";
/** ENTRYPOINT_PATH is the entrypoint inside the node; run without arguments it re-applies SAVED_HOSTS_FILE and the kubelet flags. */
export const ENTRYPOINT_PATH = "/usr/local/bin/u7s-entrypoint";
/** FLANNEL_CHART_PATH is the Flannel Helm chart baked into the node image. */
export const FLANNEL_CHART_PATH = "/usr/local/share/u7s/charts/flannel";

/** BuildFile is one file of the node image's build context. */
export interface BuildFile {
  name: string;
  content: string;
  mode: number;
}

/** buildContext lists the build context's files (names as the Dockerfile's COPY lines use them). */
export function buildContext(): readonly BuildFile[] {
  return [
    { name: "Dockerfile", content: DOCKERFILE, mode: 0o644 },
    // Executable here because COPY keeps the mode and the legacy builder has no --chmod.
    { name: "u7s-entrypoint.sh", content: ENTRYPOINT_SCRIPT, mode: 0o755 },
    { name: "90-flannel.rules", content: FLANNEL_RULES, mode: 0o644 },
    { name: "u7s-vxlan-csum.sh", content: vxlanCsum, mode: 0o755 },
    { name: "u7s-vxlan-csum.service", content: vxlanCsumUnit, mode: 0o644 },
  ];
}

/**
 * writeBuildContext writes the node image's build context into dir (which must exist).
 * The engine cannot read Bun's embedded /$bunfs files, so builds go through a real directory.
 */
export async function writeBuildContext(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const f of buildContext()) {
    const path = join(dir, f.name);
    await writeFile(path, f.content, { mode: f.mode });
    // writeFile's mode is filtered by the umask and ignored for an existing file.
    await chmod(path, f.mode);
  }
}

/** assetsHash is a short sha256 over the build context (names, modes, contents): it changes whenever the image would. */
export function assetsHash(): string {
  const h = new Bun.CryptoHasher("sha256"); // node:crypto would cost `u7s render` ~4 ms of start-up
  for (const f of buildContext()) {
    h.update(`${f.name}\0${f.mode.toString(8)}\0${Buffer.byteLength(f.content)}\0`);
    h.update(f.content);
  }
  return h.digest("hex").slice(0, 12);
}

/** nodeImageRef is the tag of the node image this u7s builds, e.g. localhost/u7s-node:v1.35.0-0123456789ab. */
export function nodeImageRef(): string {
  return `${NODE_IMAGE_REPO}:${KUBERNETES_VERSION}-${assetsHash()}`;
}
