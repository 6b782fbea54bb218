import type { EngineName } from "./types.ts";

/** EngineInfo is what `ENGINE info` tells about the engine (like kind's ProviderInfo). */
export interface EngineInfo {
  rootless: boolean;
  /** cgroupVersion is 1 or 2, undefined when the engine does not say. */
  cgroupVersion: 1 | 2 | undefined;
  cgroupDriver: string | undefined;
  /** version is the engine's server version. */
  version: string;
  /** network: the rootless network, when `info` itself tells (Podman); see Engine.rootlessNetwork. */
  network?: RootlessNetwork;
}

/**
 * RootlessNetwork is how a rootless engine gives its containers a network namespace: slirp4netns
 * or pasta (Podman's `rootlessNetworkCmd`, RootlessKit's network driver), vpnkit, lxc-user-nic.
 */
export interface RootlessNetwork {
  /** mode: slirp4netns, pasta, vpnkit, lxc-user-nic, ...; undefined when the engine does not say. */
  mode: string | undefined;
  /** rootlesskit: RootlessKit's version (rootless Docker, nerdctl), when the engine says. */
  rootlesskit?: string;
  /** tools: the user-mode network tools the engine found, with their versions ("" when found without one). */
  tools: { slirp4netns?: string; pasta?: string };
}

/** RootlessNetworkProbe is what rootlessNetwork may read on the host: XDG_RUNTIME_DIR and small files (pid files, /proc). */
export interface RootlessNetworkProbe {
  runtimeDir: string | undefined;
  readFile(path: string): string | undefined;
}

/** PortSpec is one published port, [hostIp:]host:container/protocol. */
export interface PortSpec {
  /** hostIp: publish on this host address only (undefined: every address). */
  hostIp?: string;
  host: number;
  container: number;
  protocol: "tcp" | "udp";
}

/** MountSpec is a named volume or a host path mounted into the node. */
export interface MountSpec {
  /** source: a volume name, or an absolute host path for a bind mount. */
  source: string;
  target: string;
  readOnly?: boolean;
}

/** NodeSpec is everything the node container is created with. */
export interface NodeSpec {
  name: string;
  hostname: string;
  image: string;
  network: string;
  ip: string;
  ports: PortSpec[];
  mounts: MountSpec[];
  tmpfs: string[];
  sysctls: Record<string, string>;
  env: Record<string, string>;
  labels: Record<string, string>;
  /** annotations: OCI annotations (nerdctl bypass4netns); drivers without support ignore them. */
  annotations: Record<string, string>;
}

/**
 * ForwarderSpec is a port forwarder: a small container on the node's network that publishes one
 * host port and relays it to the node (no engine can add a published port to a running container).
 */
export interface ForwarderSpec {
  name: string;
  /** image: the node's own image (it carries socat), so no other image or registry is needed. */
  image: string;
  network: string;
  port: PortSpec;
  /** command: the relay's argv (socat ...), run instead of the image's entrypoint. */
  command: string[];
  labels: Record<string, string>;
}

/** ContainerState is what `inspect` tells about an existing container. */
export interface ContainerState {
  id: string;
  name: string;
  /** status: created, running, exited, paused, restarting, ... */
  status: string;
  running: boolean;
  image: string;
  labels: Record<string, string>;
  /** ip is the container's address on each network it is attached to. */
  networks: Record<string, string>;
  /** ports: published ports as host:container/protocol. */
  ports: PortSpec[];
  mounts: { type: string; name?: string; source: string; destination: string }[];
  /** exitCode is the exit code of the container's last run, when the engine says. */
  exitCode?: number;
  /** startedAt: when the container last started (epoch ms), when the engine says. */
  startedAt?: number;
}

/** NetworkInfo is what `inspect` tells about a network. */
export interface NetworkInfo {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** subnets are the network's IPv4 and IPv6 subnets in CIDR form. */
  subnets: string[];
}

/** VolumeInfo is what `inspect` tells about a volume. */
export interface VolumeInfo {
  name: string;
  labels: Record<string, string>;
}

/** NodeLookup names what lookUpNode asks for: a node's container, the image to run (if asked), its volumes. */
export interface NodeLookup {
  container: string;
  image?: string;
  volumes: readonly string[];
}

/** NodeFound is what lookUpNode found: the container and volumes of exactly those names, and whether the image is present (false when not asked). */
export interface NodeFound {
  container: ContainerState | undefined;
  image: boolean;
  volumes: VolumeInfo[];
}

/** ExecOptions shape `ENGINE exec`. */
export interface ExecOptions {
  interactive?: boolean;
  tty?: boolean;
  env?: Record<string, string>;
  workdir?: string;
  detach?: boolean;
  /** input: text handed to the command's stdin (implies --interactive). */
  input?: string;
  /** inputFile: a file handed to the command's stdin, e.g. an image archive for `ctr images import -` (implies --interactive). */
  inputFile?: string;
  /** stream: show the command's output live while also capturing it. */
  stream?: boolean;
  /** timeoutMs: stop waiting for the command after this long (the engine CLI is killed). */
  timeoutMs?: number;
  /** signal: aborting it stops waiting for the command (the engine CLI is killed). */
  signal?: AbortSignal;
}

/**
 * Engine is one container engine CLI. Queries run the engine; the *Args methods only build
 * argv (so `--dry-run` can print them and tests can snapshot them).
 */
export interface Engine {
  readonly name: EngineName;
  /** binary is the CLI the driver runs (CONTAINER_ENGINE). */
  readonly binary: string;
  /**
   * restartUnit is the systemd user unit that must be enabled for `--restart always` containers to
   * come back after a reboot; undefined when the engine's daemon restarts them itself.
   */
  readonly restartUnit: string | undefined;
  info(): Promise<EngineInfo>;
  /**
   * isRootless tells whether the engine runs rootless, as cheaply as the engine can tell (podman's
   * `info` takes 300-600 ms); it fails like info() when the engine does not answer.
   */
  isRootless(): Promise<boolean>;
  imageExists(ref: string): Promise<boolean>;
  /** networkExists tells whether a network of exactly this name exists. */
  networkExists(name: string): Promise<boolean>;
  /** volumeExists tells whether a volume of exactly this name exists. */
  volumeExists(name: string): Promise<boolean>;
  /**
   * inspectContainer returns the container of exactly this name, undefined when there is none
   * (engines also resolve ID prefixes and, podman, name prefixes: those do not count).
   */
  inspectContainer(name: string): Promise<ContainerState | undefined>;
  /** inspectNetwork returns the network of exactly this name, undefined when there is none. */
  inspectNetwork(name: string): Promise<NetworkInfo | undefined>;
  /** inspectVolume returns the volume of exactly this name, undefined when there is none. */
  inspectVolume(name: string): Promise<VolumeInfo | undefined>;
  /** inspectVolumes returns those of the named volumes that exist (exact names), in the order asked. */
  inspectVolumes(names: readonly string[]): Promise<VolumeInfo[]>;
  /**
   * lookUpNode asks for a node's container, image and volumes (what inspectContainer, imageExists
   * and inspectVolumes answer) in as few engine commands as the engine allows.
   */
  lookUpNode(q: NodeLookup): Promise<NodeFound>;
  /** listLabelled returns every container (running or not) carrying this label, whatever its value (`u7s ls`). */
  listLabelled(label: string): Promise<ContainerState[]>;
  /** listContainers returns every container (running or not) that carries all of these labels. */
  listContainers(labels: Record<string, string>): Promise<ContainerState[]>;
  /** listNetworks returns every network of the engine (to find subnets already in use). */
  listNetworks(): Promise<NetworkInfo[]>;
  /**
   * rootlessNetwork tells the rootless network mode and its tools as far as the engine tells:
   * podman's info says it; rootless Docker's `version` lists RootlessKit with its network driver,
   * else RootlessKit's command line says it (read through `probe`, under runtimeDir's pid files).
   */
  rootlessNetwork(info: EngineInfo, probe: RootlessNetworkProbe): Promise<RootlessNetwork>;
  /** countRunning counts the running containers that carry every one of these label keys (whatever their values). */
  countRunning(labels: readonly string[]): Promise<number>;
  /** exec runs a command in a container and captures its output (non-interactive). */
  exec(name: string, cmd: readonly string[], opts?: ExecOptions): Promise<{ exitCode: number; stdout: string; stderr: string }>;

  /**
   * inEngineNetns returns the argv that runs cmd in the network namespace the engine's containers
   * are created from (rootlesskit's child for rootless Docker/nerdctl, podman's rootless netns),
   * or undefined when u7s cannot enter it.
   */
  inEngineNetns(cmd: readonly string[], rootless: boolean, runtimeDir: string | undefined): Promise<string[] | undefined>;

  buildArgs(tag: string, contextDir: string): string[];
  networkCreateArgs(name: string, subnet: string, labels: Record<string, string>, mtu?: number): string[];
  networkRemoveArgs(name: string): string[];
  volumeCreateArgs(name: string, labels: Record<string, string>): string[];
  volumeRemoveArgs(names: readonly string[]): string[];
  runArgs(spec: NodeSpec): string[];
  /** forwarderRunArgs runs a port forwarder (see ForwarderSpec). */
  forwarderRunArgs(spec: ForwarderSpec): string[];
  startArgs(name: string): string[];
  removeContainerArgs(name: string): string[];
  execArgs(name: string, cmd: readonly string[], opts?: ExecOptions): string[];
  /** logsArgs shows the container's log (its console): since, in epoch seconds, leaves out what came before. */
  logsArgs(name: string, opts: { follow?: boolean; tail?: number; since?: number }): string[];
  saveArgs(ref: string, file: string): string[];
  /** pullArgs pulls an image from its registry (`image save` of an image not present here). */
  pullArgs(ref: string): string[];
  loadArgs(file: string): string[];
  /** copyFromArgs copies a file out of a container (following symlinks) to a host path. */
  copyFromArgs(name: string, src: string, dst: string): string[];
}
