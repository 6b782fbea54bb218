import type { EngineInfo, NetworkInfo, NodeFound, NodeLookup, RootlessNetwork, VolumeInfo } from "./engine.ts";
import { DockerLikeEngine, volumeOf } from "./base.ts";

/** PodmanTool is podman info's block about a network tool (host.slirp4netns, host.pasta). */
interface PodmanTool {
  executable?: string;
  package?: string;
  version?: string;
}

interface PodmanInfo {
  host?: {
    security?: { rootless?: boolean };
    cgroupVersion?: string;
    cgroupManager?: string;
    /** rootlessNetworkCmd: containers.conf's default_rootless_network_cmd as podman resolved it (Podman >= 5). */
    rootlessNetworkCmd?: string;
    slirp4netns?: PodmanTool;
    pasta?: PodmanTool;
  };
  version?: { Version?: string };
}

/** toolVersion reads a tool's version from podman info: "slirp4netns version 1.2.0\ncommit: ..." -> "1.2.0", "pasta 2025_05_03.587980c\n..." -> "2025_05_03.587980c". */
function toolVersion(t: PodmanTool | undefined): string | undefined {
  if (!t || !(t.executable || t.package || t.version)) return undefined; // Podman 5 prints an empty block for a tool it did not find
  const first = (t.version ?? "").split("\n")[0]!.trim();
  return /^\S+\s+(?:version\s+)?(\S+)/.exec(first)?.[1] ?? "";
}

/**
 * parsePodmanNetwork reads the rootless network from podman info: `rootlessNetworkCmd` (Podman >= 5;
 * Podman 4 does not say, and uses slirp4netns unless containers.conf names pasta) and the tools found.
 */
export function parsePodmanNetwork(info: PodmanInfo): RootlessNetwork | undefined {
  const h = info.host;
  const slirp = toolVersion(h?.slirp4netns);
  const pasta = toolVersion(h?.pasta);
  if (!h?.rootlessNetworkCmd && slirp === undefined && pasta === undefined) return undefined;
  return {
    mode: h?.rootlessNetworkCmd || undefined,
    tools: { ...(slirp !== undefined ? { slirp4netns: slirp } : {}), ...(pasta !== undefined ? { pasta } : {}) },
  };
}

/**
 * PASTA_OWN_ADDRESS_OPTIONS are the pasta options that give Podman's rootless network namespace an
 * address of its own (slirp4netns's 10.0.2.100/24 behind 10.0.2.2) instead of a copy of the host's.
 * Why: by default pasta copies the host's address into that namespace, so a node's connection to
 * HOST_IP:PORT (its kubelet as the API server dials it at the node's ExternalIP, its own published
 * ports) ends inside the namespace and times out (usernetes #342, containers/container-libs #55).
 * With an address of its own, HOST_IP is routed through pasta to the host, where the published
 * ports listen. Measured on Debian 13's Podman 5.4.2 with passt 2025-05-03 (README, host C);
 * Podman's maintainers give the same options for slirp4netns's behaviour (podman #26494). The
 * option is containers.conf's, not a `podman run` flag: bridge networks share one rootless
 * namespace per user, started by whichever container needs it first.
 */
export const PASTA_OWN_ADDRESS_OPTIONS: readonly string[] = ["-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2"];

/** PASTA_DROP_IN is the containers.conf drop-in (relative to HOME) that u7s's fix writes. */
export const PASTA_DROP_IN = ".config/containers/containers.conf.d/u7s-pasta.conf";

/** pastaDropIn is the text of PASTA_DROP_IN: a [network] table with PASTA_OWN_ADDRESS_OPTIONS. */
export function pastaDropIn(): string {
  return `[network]\npasta_options = [${PASTA_OWN_ADDRESS_OPTIONS.map((o) => `"${o}"`).join(", ")}]\n`;
}

/** pastaFix is the exact fix that gives Podman's pasta namespace an address of its own (PASTA_OWN_ADDRESS_OPTIONS). */
export function pastaFix(home: string | undefined): string {
  const file = `${home ?? "~"}/${PASTA_DROP_IN}`;
  // the namespace takes the options when it starts: once no container of this user is on a Podman network
  return `mkdir -p ${file.replace(/\/[^/]+$/, "")} && printf '${pastaDropIn().replace(/\n/g, "\\n")}' > ${file}, then \`u7s down\` every node (and stop other containers on Podman networks) and \`u7s up\` again`;
}

/** pastaOptionsOf reads pasta_options from containers.conf text (a TOML array, one or more lines); undefined when unset. */
export function pastaOptionsOf(text: string): string[] | undefined {
  const m = /^\s*pasta_options\s*=\s*\[([^\]]*)\]/m.exec(text);
  if (!m) return undefined;
  return [...m[1]!.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'/g)].map((x) => x[1] ?? x[2] ?? "");
}

/** pastaHasOwnAddress tells whether pasta options give the namespace its own IPv4 address (-a/--address). */
export function pastaHasOwnAddress(options: readonly string[]): boolean {
  return options.some((o, i) => ((o === "-a" || o === "--address") && /^\d+\.\d+\.\d+\.\d+$/.test(options[i + 1] ?? "")) || /^--address=\d+\.\d+\.\d+\.\d+$/.test(o));
}

/** parsePodmanInfo reads `podman info --format '{{json .}}'`. */
export function parsePodmanInfo(info: PodmanInfo): EngineInfo {
  const v = info.host?.cgroupVersion;
  const network = parsePodmanNetwork(info);
  return {
    rootless: info.host?.security?.rootless === true,
    cgroupVersion: v === "v2" ? 2 : v === "v1" ? 1 : undefined,
    cgroupDriver: info.host?.cgroupManager,
    version: info.version?.Version ?? "",
    ...(network ? { network } : {}),
  };
}

interface PodmanNetworkJson {
  id?: string;
  name?: string;
  labels?: Record<string, string> | null;
  subnets?: { subnet?: string }[] | null;
}

/** podmanNetworkOf reads one object of `podman network inspect` (netavark's lowercase shape, podman >= 4). */
export function podmanNetworkOf(n: PodmanNetworkJson): NetworkInfo {
  return {
    id: n.id ?? "",
    name: n.name ?? "",
    labels: n.labels ?? {},
    subnets: (n.subnets ?? []).map((s) => s.subnet ?? "").filter((s) => s !== ""),
  };
}

/** PodmanEngine drives the podman CLI (no daemon: each command is the engine). */
export class PodmanEngine extends DockerLikeEngine {
  readonly name = "podman" as const;
  // Podman has no daemon: after a reboot, only podman-restart.service starts `--restart always`
  // containers (https://docs.podman.io/en/latest/markdown/podman-run.1.html#restart-policy).
  override readonly restartUnit = "podman-restart.service";
  /** mtuOption: Podman's bridge driver names it `mtu` (podman-network-create(1), --opt). */
  override readonly mtuOption = "mtu";
  async info(): Promise<EngineInfo> {
    return parsePodmanInfo((await this.infoJson()) as PodmanInfo);
  }
  // `podman info` takes 300-600 ms: it asks the OCI runtime, conmon, the network tools and storage
  // for their state. `podman unshare true` takes one podman start and succeeds only for a local
  // rootless podman: a rootful one refuses ("please use unshare with rootless") and the remote
  // client has no unshare. Anything else is left to info, which also says when podman does not answer.
  override async isRootless(): Promise<boolean> {
    if ((await this.runner([this.binary, "unshare", "true"])).exitCode === 0) return true;
    return (await this.info()).rootless;
  }
  // One `ls --format json` lists every network with its subnets and labels, and every volume with
  // its labels (podman >= 4): one podman start instead of ls + inspect, or an inspect per volume.
  override async listNetworks(): Promise<NetworkInfo[]> {
    return (await this.listJson([this.binary, "network", "ls", "--format", "json"])).map((n) => podmanNetworkOf(n as PodmanNetworkJson));
  }
  override async inspectVolumes(names: readonly string[]): Promise<VolumeInfo[]> {
    const all = (await this.listJson([this.binary, "volume", "ls", "--format", "json"])).map((v) => volumeOf(v as Parameters<typeof volumeOf>[0]));
    // exact names only (podman resolves name prefixes in inspect; ls lists names as they are)
    return names.flatMap((n) => all.filter((v) => v.name === n).slice(0, 1));
  }
  // One `podman inspect` for the container, the image and the volumes (see inspectNodeAtOnce).
  override lookUpNode(q: NodeLookup): Promise<NodeFound> {
    return this.inspectNodeAtOnce(q);
  }
  // Rootless podman puts bridge-network containers in its "rootless netns"; `podman unshare
  // --rootless-netns` runs a command there (podman >= 4.0).
  async inEngineNetns(cmd: readonly string[], rootless: boolean, _runtimeDir: string | undefined) {
    return rootless ? [this.binary, "unshare", "--rootless-netns", ...cmd] : [...cmd];
  }
  protected override networkOf(raw: unknown): NetworkInfo {
    return podmanNetworkOf(raw as PodmanNetworkJson);
  }
  // podman cp has no -L: it always copies what a symlink points to.
  protected override followLinkFlag(): string[] {
    return [];
  }
  protected reachHint(): string {
    return "check that `podman info` works for this user (subuid/subgid ranges, XDG_RUNTIME_DIR); do not set CONTAINER_HOST for a local podman";
  }
}
