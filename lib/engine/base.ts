import { CommandError, formatCommand, type RunResult, type Runner } from "../exec.ts";
import { U7sError } from "../errors.ts";
import type { ContainerState, Engine, EngineInfo, ExecOptions, ForwarderSpec, NetworkInfo, NodeFound, NodeLookup, NodeSpec, PortSpec, RootlessNetwork, RootlessNetworkProbe, VolumeInfo } from "./engine.ts";
import type { EngineName } from "./types.ts";

interface InspectJson {
  Id?: string;
  Name?: string;
  State?: { Status?: string; Running?: boolean; ExitCode?: number; StartedAt?: string };
  Config?: { Image?: string; Labels?: Record<string, string> | null };
  ImageName?: string;
  NetworkSettings?: {
    Networks?: Record<string, { IPAddress?: string }> | null;
    Ports?: Record<string, { HostIp?: string; HostPort?: string }[] | null> | null;
  };
  Mounts?: { Type?: string; Name?: string; Source?: string; Destination?: string }[] | null;
}

/** parsePorts turns inspect's NetworkSettings.Ports ({"6443/tcp": [{HostPort}]}) into PortSpecs. */
export function parsePorts(ports: NonNullable<InspectJson["NetworkSettings"]>["Ports"]): PortSpec[] {
  const out: PortSpec[] = [];
  for (const [key, bindings] of Object.entries(ports ?? {})) {
    const [port, proto] = key.split("/");
    for (const b of bindings ?? []) {
      const spec: PortSpec = { host: Number(b.HostPort), container: Number(port), protocol: proto === "udp" ? "udp" : "tcp" };
      // engines list one binding per address family; keep one per host:container/protocol
      if (!out.some((p) => p.host === spec.host && p.container === spec.container && p.protocol === spec.protocol)) out.push(spec);
    }
  }
  return out.sort((a, b) => a.container - b.container || a.protocol.localeCompare(b.protocol));
}

/** containerStateOf reads one object of `ENGINE container inspect` output. */
export function containerStateOf(c: InspectJson): ContainerState {
  const networks: Record<string, string> = {};
  for (const [name, n] of Object.entries(c.NetworkSettings?.Networks ?? {})) networks[name] = n.IPAddress ?? "";
  const status = c.State?.Status ?? "unknown";
  return {
    id: c.Id ?? "",
    name: (c.Name ?? "").replace(/^\//, ""),
    status,
    // Docker reports Running=true for a restarting or paused container, which takes no exec:
    // only the status "running" is running.
    running: (c.State?.Running ?? false) && (c.State?.Status === undefined || status === "running"),
    image: c.Config?.Image ?? c.ImageName ?? "",
    labels: c.Config?.Labels ?? {},
    networks,
    ports: parsePorts(c.NetworkSettings?.Ports),
    mounts: (c.Mounts ?? []).map((m) => ({
      type: m.Type ?? "",
      name: m.Name,
      source: m.Source ?? "",
      destination: m.Destination ?? "",
    })),
    ...(typeof c.State?.ExitCode === "number" ? { exitCode: c.State.ExitCode } : {}),
    ...startedAt(c.State?.StartedAt),
  };
}

/** startedAt reads State.StartedAt (RFC 3339); Docker's zero time stands for a container never started. */
function startedAt(text: string | undefined): { startedAt?: number } {
  const ms = text === undefined ? NaN : Date.parse(text);
  return Number.isFinite(ms) && ms > 0 ? { startedAt: ms } : {};
}

/** parseContainerState reads the first object of `ENGINE inspect` output. */
export function parseContainerState(json: string): ContainerState | undefined {
  const c = (JSON.parse(json) as InspectJson[])[0];
  return c ? containerStateOf(c) : undefined;
}

interface DockerNetworkJson {
  Id?: string;
  Name?: string;
  Labels?: Record<string, string> | null;
  IPAM?: { Config?: { Subnet?: string }[] | null } | null;
}

/** dockerNetworkOf reads one object of `docker network inspect` (nerdctl prints the same shape). */
export function dockerNetworkOf(n: DockerNetworkJson): NetworkInfo {
  return {
    id: n.Id ?? "",
    name: n.Name ?? "",
    labels: n.Labels ?? {},
    subnets: (n.IPAM?.Config ?? []).map((c) => c.Subnet ?? "").filter((s) => s !== ""),
  };
}

/** volumeOf reads one object of `ENGINE volume inspect` (the same shape on every engine). */
export function volumeOf(v: { Name?: string; Labels?: Record<string, string> | null }): VolumeInfo {
  return { name: v.Name ?? "", labels: v.Labels ?? {} };
}

// What each engine prints when the object does not exist (docker: "No such container", "network X
// not found", "no such volume"; podman: "no such container", "network not found", "image not known";
// nerdctl: "not found").
const NOT_FOUND = /no such (container|object|volume|network|image)|not found|image not known/i;

/**
 * DockerLikeEngine drives a CLI with Docker's command set; the docker, podman and nerdctl
 * drivers extend it and override only where their engine differs.
 */
export abstract class DockerLikeEngine implements Engine {
  abstract readonly name: EngineName;
  readonly restartUnit: string | undefined = undefined;
  /** mtuOption is the network driver option that sets a network's MTU (`network create --opt NAME=N`). */
  readonly mtuOption: string = "com.docker.network.driver.mtu";
  readonly binary: string;
  protected readonly runner: Runner;
  constructor(binary: string, runner: Runner) {
    this.binary = binary;
    this.runner = runner;
  }

  abstract info(): Promise<EngineInfo>;

  async isRootless(): Promise<boolean> {
    return (await this.info()).rootless;
  }

  /** notReachable is the error for an engine whose daemon/service does not answer. */
  protected notReachable(err: CommandError): U7sError {
    return new U7sError(`${this.name} is not reachable: ${err.message}`, {
      detail: err.detail,
      hint: this.reachHint(),
    });
  }

  /** reachHint says how to get the engine answering. */
  protected abstract reachHint(): string;

  protected async infoJson(): Promise<unknown> {
    const argv = [this.binary, "info", "--format", "{{json .}}"];
    const r = await this.runner(argv);
    if (r.exitCode !== 0) throw this.notReachable(new CommandError(argv, r));
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new U7sError(`${this.name} answered \`${formatCommand(argv)}\` with ${r.stdout.trim() === "" ? "nothing" : "something that is not JSON"}`, {
        detail: r.stdout.trim().slice(0, 500) || undefined,
        hint: `check that ${this.binary} is ${this.name} and works (\`${this.binary} info\`)`,
      });
    }
  }

  /**
   * queryFailed explains a failed query: when the engine does not answer `info` either, the same
   * "not reachable" error and hint every command gives; otherwise the failed command and its stderr.
   */
  protected async queryFailed(argv: readonly string[], r: RunResult): Promise<U7sError> {
    const info = [this.binary, "info", "--format", "{{json .}}"];
    const probe = await this.runner(info);
    if (probe.exitCode !== 0) return this.notReachable(new CommandError(info, probe));
    return new CommandError(argv, r);
  }

  /** inspectAll runs `ENGINE KIND inspect NAMES...` and returns its JSON list; undefined when an object does not exist. */
  protected async inspectAll(kind: "container" | "network" | "volume" | "image", names: readonly string[]): Promise<unknown[] | undefined> {
    const argv = [this.binary, kind, "inspect", ...names];
    const r = await this.runner(argv);
    if (r.exitCode !== 0) {
      if (NOT_FOUND.test(r.stderr)) return undefined;
      throw await this.queryFailed(argv, r);
    }
    try {
      const list = JSON.parse(r.stdout) as unknown;
      if (Array.isArray(list)) return list;
    } catch {
      // reported below
    }
    throw new U7sError(`${this.name} answered \`${formatCommand(argv)}\` with ${r.stdout.trim() === "" ? "nothing" : "something that is not a JSON list"}`, {
      detail: r.stdout.trim().slice(0, 500) || undefined,
      hint: `check that ${this.binary} is ${this.name} and works (\`${this.binary} ${kind} ls\`)`,
    });
  }

  /**
   * inspectExact returns the inspected object whose name is exactly `name`: engines also resolve
   * ID prefixes (and podman volume name prefixes), which must never stand in for the asked name.
   */
  protected async inspectExact<T extends { name: string }>(kind: "container" | "network" | "volume", name: string, parse: (raw: never) => T): Promise<T | undefined> {
    const list = await this.inspectAll(kind, [name]);
    return (list ?? []).map((o) => parse(o as never)).find((o) => o.name === name);
  }

  /** listJson runs a `KIND ls --format json` query and returns its JSON list (nothing printed: an empty list). */
  protected async listJson(argv: readonly string[]): Promise<unknown[]> {
    const r = await this.runner(argv);
    if (r.exitCode !== 0) throw await this.queryFailed(argv, r);
    if (r.stdout.trim() === "") return [];
    try {
      const list = JSON.parse(r.stdout) as unknown;
      if (Array.isArray(list)) return list;
    } catch {
      // reported below
    }
    throw new U7sError(`${this.name} answered \`${formatCommand(argv)}\` with something that is not a JSON list`, {
      detail: r.stdout.trim().slice(0, 500),
      hint: `check that ${this.binary} is ${this.name} and works (\`${formatCommand(argv)}\`)`,
    });
  }

  async imageExists(ref: string): Promise<boolean> {
    // An image may be named by ID or ID prefix on purpose (`up --image 3f2a...`): no exact-name check.
    return (await this.inspectAll("image", [ref])) !== undefined;
  }
  async networkExists(name: string): Promise<boolean> {
    return (await this.inspectNetwork(name)) !== undefined;
  }
  async volumeExists(name: string): Promise<boolean> {
    return (await this.inspectVolume(name)) !== undefined;
  }
  inspectContainer(name: string): Promise<ContainerState | undefined> {
    return this.inspectExact("container", name, containerStateOf);
  }
  inspectNetwork(name: string): Promise<NetworkInfo | undefined> {
    return this.inspectExact("network", name, (n) => this.networkOf(n));
  }
  inspectVolume(name: string): Promise<VolumeInfo | undefined> {
    return this.inspectExact("volume", name, volumeOf);
  }
  async inspectVolumes(names: readonly string[]): Promise<VolumeInfo[]> {
    // one inspect per name, all at once: a batch inspect fails whole when one volume is missing
    const found = await Promise.all(names.map((n) => this.inspectVolume(n)));
    return found.filter((v) => v !== undefined);
  }
  lookUpNode(q: NodeLookup): Promise<NodeFound> {
    return this.lookUpEach(q);
  }
  /** lookUpEach is lookUpNode as three queries at once. */
  protected async lookUpEach(q: NodeLookup): Promise<NodeFound> {
    const [container, image, volumes] = await Promise.all([this.inspectContainer(q.container), q.image === undefined ? false : this.imageExists(q.image), this.inspectVolumes(q.volumes)]);
    return { container, image, volumes };
  }
  /**
   * inspectNodeAtOnce is lookUpNode in one `ENGINE inspect NAME...` (no --type), for docker and
   * podman: each name is looked up as a container first, then as an image, a volume, a network; what
   * is found is printed and the rest named `no such object` (docker: `No such object: NAME`, podman:
   * `no such object: "NAME"`). Objects are told apart by their shape and count only under their exact
   * name; a name that found another kind of object (a network named like the node, a container named
   * like a volume, a volume name prefix) is asked again the usual way, and so is everything when the
   * engine fails otherwise.
   */
  protected async inspectNodeAtOnce(q: NodeLookup): Promise<NodeFound> {
    const r = await this.runner([this.binary, "inspect", q.container, ...(q.image === undefined ? [] : [q.image]), ...q.volumes]);
    const missing = new Set([...r.stderr.matchAll(/no such object: "?([^"\r\n]+)"?/gi)].map((m) => m[1]!.trim()));
    const otherErrors = r.stderr.split("\n").some((l) => /error/i.test(l) && !/no such object/i.test(l));
    let found: unknown;
    try {
      found = r.stdout.trim() === "" ? [] : JSON.parse(r.stdout);
    } catch {
      found = undefined;
    }
    if ((r.exitCode !== 0 && missing.size === 0) || otherErrors || !Array.isArray(found)) return this.lookUpEach(q);
    const objects = found as Record<string, unknown>[];
    const container = objects.filter((o) => "State" in o).map((o) => containerStateOf(o)).find((c) => c.name === q.container);
    const volumes = objects.filter((o) => "Mountpoint" in o && !("State" in o)).map((o) => volumeOf(o));
    const ref = q.image;
    const image = ref === undefined || missing.has(ref) ? false : objects.some((o) => Array.isArray(o.RepoTags) && o.RepoTags.includes(ref)) || (await this.imageExists(ref));
    const exact = q.volumes.flatMap((n) => volumes.filter((v) => v.name === n).slice(0, 1));
    const unclear = q.volumes.some((n) => !missing.has(n) && !exact.some((v) => v.name === n));
    return { container, image, volumes: unclear ? await this.inspectVolumes(q.volumes) : exact };
  }
  async listNetworks(): Promise<NetworkInfo[]> {
    const argv = [this.binary, "network", "ls", "--format", "{{.Name}}"];
    const r = await this.runner(argv);
    if (r.exitCode !== 0) throw await this.queryFailed(argv, r);
    const names = r.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "");
    if (names.length === 0) return [];
    const all = await this.inspectAll("network", names);
    if (all) return all.map((n) => this.networkOf(n));
    // one was removed between ls and inspect: inspect one at a time, skipping the missing
    const found: NetworkInfo[] = [];
    for (const n of names) {
      const info = await this.inspectNetwork(n);
      if (info) found.push(info);
    }
    return found;
  }
  async listLabelled(label: string): Promise<ContainerState[]> {
    // `--filter label=KEY` matches the key with any value, on docker, podman and nerdctl alike.
    const argv = [this.binary, "ps", "--all", "--filter", `label=${label}`, "--format", "{{.Names}}"];
    const r = await this.runner(argv);
    if (r.exitCode !== 0) throw await this.queryFailed(argv, r);
    const states: ContainerState[] = [];
    for (const name of new Set(r.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== ""))) {
      const c = await this.inspectContainer(name); // removed meanwhile: skipped
      if (c && label in c.labels) states.push(c);
    }
    return states;
  }
  async rootlessNetwork(info: EngineInfo, _probe: RootlessNetworkProbe): Promise<RootlessNetwork> {
    return info.network ?? { mode: undefined, tools: {} };
  }
  /**
   * rootlesskitNetwork completes what the daemon told of RootlessKit: the network driver from
   * RootlessKit's command line (pid files under runtimeDir), its version from `rootlesskit --version`.
   */
  protected async rootlesskitNetwork(told: RootlessNetwork, probe: RootlessNetworkProbe, pidFiles: readonly string[]): Promise<RootlessNetwork> {
    const mode = told.mode ?? rootlesskitNetFromProc(probe.runtimeDir ? pidFiles.map((f) => `${probe.runtimeDir}/${f}`) : [], probe.readFile);
    let rootlesskit = told.rootlesskit;
    if (rootlesskit === undefined) {
      // "rootlesskit version 1.1.0"; not installed or not answering: unknown
      const r = await this.runner(["rootlesskit", "--version"]).catch(() => undefined);
      rootlesskit = r?.exitCode === 0 ? /version\s+(\S+)/.exec(r.stdout)?.[1] : undefined;
    }
    return { ...told, mode, ...(rootlesskit !== undefined ? { rootlesskit } : {}) };
  }
  async countRunning(labels: readonly string[]): Promise<number> {
    // one `ps` without --all (running only); several label filters must all match (docker, podman, nerdctl)
    const argv = [this.binary, "ps", ...labels.flatMap((l) => ["--filter", `label=${l}`]), "--format", "{{.Names}}"];
    const r = await this.runner(argv);
    if (r.exitCode !== 0) throw await this.queryFailed(argv, r);
    return new Set(r.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "")).size;
  }
  async listContainers(labels: Record<string, string>): Promise<ContainerState[]> {
    // ps filters by label on every engine; inspect then gives the same state as inspectContainer.
    const argv = [this.binary, "ps", "--all", ...Object.entries(labels).flatMap(([k, v]) => ["--filter", `label=${k}=${v}`]), "--format", "{{.Names}}"];
    const r = await this.runner(argv);
    if (r.exitCode !== 0) throw await this.queryFailed(argv, r);
    const names = r.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "");
    const found: ContainerState[] = [];
    // one at a time: a container removed between ps and inspect is skipped, not an error
    for (const n of names) {
      const c = await this.inspectContainer(n);
      if (c && Object.entries(labels).every(([k, v]) => c.labels[k] === v)) found.push(c);
    }
    return found;
  }
  /** networkOf reads one object of `network inspect`; podman's netavark prints another shape. */
  protected networkOf(raw: unknown): NetworkInfo {
    return dockerNetworkOf(raw as DockerNetworkJson);
  }

  exec(name: string, cmd: readonly string[], opts: ExecOptions = {}) {
    const { input, inputFile, stream, timeoutMs, signal, ...rest } = opts;
    const argv = this.execArgs(name, cmd, { ...rest, interactive: rest.interactive || input !== undefined || inputFile !== undefined });
    return this.runner(argv, {
      ...(input !== undefined ? { input } : {}),
      ...(inputFile !== undefined ? { stdinFile: inputFile } : {}),
      ...(stream ? { stream } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  abstract inEngineNetns(cmd: readonly string[], rootless: boolean, runtimeDir: string | undefined): Promise<string[] | undefined>;

  buildArgs(tag: string, contextDir: string): string[] {
    return [this.binary, "build", "-t", tag, contextDir];
  }
  networkCreateArgs(name: string, subnet: string, labels: Record<string, string>, mtu?: number): string[] {
    // NODE_MTU: the bridge driver's MTU option (Docker's network create docs; nerdctl takes the same name)
    const mtuFlags = mtu === undefined ? [] : ["--opt", `${this.mtuOption}=${mtu}`];
    return [this.binary, "network", "create", "--subnet", subnet, ...mtuFlags, ...labelFlags(labels), name];
  }
  networkRemoveArgs(name: string): string[] {
    return [this.binary, "network", "rm", name];
  }
  volumeCreateArgs(name: string, labels: Record<string, string>): string[] {
    return [this.binary, "volume", "create", ...labelFlags(labels), name];
  }
  volumeRemoveArgs(names: readonly string[]): string[] {
    return [this.binary, "volume", "rm", ...names];
  }

  runArgs(spec: NodeSpec): string[] {
    return [
      this.binary,
      "run",
      "--detach",
      "--name", spec.name,
      "--hostname", spec.hostname, // the node's hostname is its Kubernetes node name
      "--privileged", // kubelet, kube-proxy and containerd need every capability of the user namespace
      "--restart", "always", // come back after the engine (or host) restarts
      "--network", spec.network,
      "--ip", spec.ip, // fixed NODE_IP: etcd and the kubelet are bound to it
      ...spec.ports.flatMap((p) => ["--publish", publishFlag(p)]),
      ...spec.mounts.flatMap((m) => ["--volume", `${m.source}:${m.target}${m.readOnly ? ":ro" : ""}`]),
      ...spec.tmpfs.flatMap((t) => ["--tmpfs", t]), // systemd wants a fresh /run and /tmp on every boot
      ...Object.entries(spec.sysctls).flatMap(([k, v]) => ["--sysctl", `${k}=${v}`]),
      ...Object.entries(spec.env).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
      ...labelFlags(spec.labels),
      ...this.annotationFlags(spec.annotations),
      spec.image,
    ];
  }
  forwarderRunArgs(spec: ForwarderSpec): string[] {
    return [
      this.binary,
      "run",
      "--detach",
      "--name", spec.name,
      "--restart", "always", // come back with the engine (or host), like the node
      "--network", spec.network, // the node's network: NODE_IP is reachable without routing
      "--publish", publishFlag(spec.port), // the one port this forwarder exists for
      "--entrypoint", spec.command[0]!, // the node image boots systemd; the forwarder runs the relay only
      "--cap-drop", "ALL", // a relay needs no capability...
      "--cap-add", "NET_BIND_SERVICE", // ...but to listen on a node port below 1024
      "--read-only", // and writes nothing
      "--stop-signal", "SIGKILL", // socat is PID 1, which ignores SIGTERM: `rm -f` would wait 10 s (podman) for nothing to flush
      // The node may come back from a restart with a new MAC address (podman picks one per start):
      // re-check the neighbour within a second or two, not after the default 15-45 s (+5 s delay).
      "--sysctl", "net.ipv4.neigh.eth0.base_reachable_time_ms=1000",
      "--sysctl", "net.ipv4.neigh.eth0.delay_first_probe_time=1",
      ...labelFlags(spec.labels),
      spec.image,
      ...spec.command.slice(1),
    ];
  }
  /** annotationFlags: only nerdctl understands the bypass4netns annotations. */
  protected annotationFlags(_annotations: Record<string, string>): string[] {
    return [];
  }
  startArgs(name: string): string[] {
    return [this.binary, "start", name];
  }
  removeContainerArgs(name: string): string[] {
    return [this.binary, "rm", "--force", name];
  }
  execArgs(name: string, cmd: readonly string[], opts: ExecOptions = {}): string[] {
    return [
      this.binary,
      "exec",
      ...(opts.interactive ? ["--interactive"] : []),
      ...(opts.tty ? ["--tty"] : []),
      ...(opts.detach ? ["--detach"] : []),
      ...(opts.workdir ? ["--workdir", opts.workdir] : []),
      ...Object.entries(opts.env ?? {}).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
      name,
      ...cmd,
    ];
  }
  logsArgs(name: string, opts: { follow?: boolean; tail?: number; since?: number }): string[] {
    return [
      this.binary,
      "logs",
      ...(opts.follow ? ["--follow"] : []),
      ...(opts.tail !== undefined ? ["--tail", String(opts.tail)] : []),
      // a Unix timestamp: docker, podman and nerdctl all take one
      ...(opts.since !== undefined ? ["--since", String(opts.since)] : []),
      name,
    ];
  }
  saveArgs(ref: string, file: string): string[] {
    return [this.binary, "save", "-o", file, ref];
  }
  pullArgs(ref: string): string[] {
    return [this.binary, "pull", ref];
  }
  loadArgs(file: string): string[] {
    return [this.binary, "load", "-i", file];
  }
  copyFromArgs(name: string, src: string, dst: string): string[] {
    return [this.binary, "cp", ...this.followLinkFlag(), `${name}:${src}`, dst];
  }
  /** followLinkFlag makes `cp` copy what a symlink points to (docker and nerdctl: -L). */
  protected followLinkFlag(): string[] {
    return ["-L"];
  }
}

/** publishFlag renders a published port as --publish takes it: [HOST_IP:]HOST:CONTAINER/PROTO. */
export function publishFlag(p: PortSpec): string {
  return `${p.hostIp !== undefined ? `${p.hostIp}:` : ""}${p.host}:${p.container}/${p.protocol}`;
}

/** labelFlags renders labels as --label k=v pairs. */
export function labelFlags(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
}

/**
 * rootlesskitNetFromProc finds RootlessKit's network driver (`--net=slirp4netns`) in the command line
 * of the first live process named by one of pidFiles (rootlesskit's child, which RootlessKit re-executes
 * with its own flags) or of its parent (the daemon's pid file names the daemon inside RootlessKit).
 * For daemons that do not say (Debian 12's Docker 20.10 lists no rootlesskit in `docker version`).
 */
export function rootlesskitNetFromProc(pidFiles: readonly string[], readFile: (path: string) => string | undefined): string | undefined {
  for (const file of pidFiles) {
    let pid = readFile(file)?.trim();
    for (let hop = 0; hop < 2 && pid !== undefined && /^[0-9]+$/.test(pid); hop++) {
      const argv = (readFile(`/proc/${pid}/cmdline`) ?? "").split("\0");
      for (let i = 0; i < argv.length; i++) {
        const m = /^--net(?:=(.*))?$/.exec(argv[i]!);
        if (m) return m[1] ?? argv[i + 1];
      }
      pid = /^PPid:\s*([0-9]+)/m.exec(readFile(`/proc/${pid}/status`) ?? "")?.[1];
    }
  }
  return undefined;
}

/**
 * rootlesskitNetnsArgs enters the namespaces of the first live process named by one of pidFiles
 * (rootlesskit's child, or the daemon inside it), as dockerd-rootless-setuptool.sh does; rootful
 * engines share the host's network namespace.
 */
export async function rootlesskitNetnsArgs(cmd: readonly string[], rootless: boolean, pidFiles: readonly string[]): Promise<string[] | undefined> {
  if (!rootless) return [...cmd];
  for (const file of pidFiles) {
    const pid = (await Bun.file(file).text().catch(() => "")).trim();
    if (/^[0-9]+$/.test(pid) && (await Bun.file(`/proc/${pid}/status`).exists())) {
      return ["nsenter", "-U", "--preserve-credentials", "-n", "-t", pid, ...cmd];
    }
  }
  return undefined;
}
