import { CommandError, type Runner } from "../exec.ts";
import { U7sError } from "../errors.ts";
import type { ContainerState, Engine, EngineInfo, ExecOptions, NodeSpec, PortSpec } from "./engine.ts";
import type { EngineName } from "./types.ts";

interface InspectJson {
  Id?: string;
  Name?: string;
  State?: { Status?: string; Running?: boolean };
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

/** parseContainerState reads the first object of `ENGINE inspect` output. */
export function parseContainerState(json: string): ContainerState | undefined {
  const list = JSON.parse(json) as InspectJson[];
  const c = list[0];
  if (!c) return undefined;
  const networks: Record<string, string> = {};
  for (const [name, n] of Object.entries(c.NetworkSettings?.Networks ?? {})) networks[name] = n.IPAddress ?? "";
  return {
    id: c.Id ?? "",
    name: (c.Name ?? "").replace(/^\//, ""),
    status: c.State?.Status ?? "unknown",
    running: c.State?.Running ?? false,
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
  };
}

/**
 * DockerLikeEngine drives a CLI with Docker's command set; the docker, podman and nerdctl
 * drivers extend it and override only where their engine differs.
 */
export abstract class DockerLikeEngine implements Engine {
  abstract readonly name: EngineName;
  readonly restartUnit: string | undefined = undefined;
  readonly binary: string;
  protected readonly runner: Runner;
  constructor(binary: string, runner: Runner) {
    this.binary = binary;
    this.runner = runner;
  }

  abstract info(): Promise<EngineInfo>;

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
      throw new U7sError(`cannot parse the output of ${argv.join(" ")}`, { detail: r.stdout.slice(0, 500) });
    }
  }

  protected async succeeds(argv: string[]): Promise<boolean> {
    return (await this.runner(argv)).exitCode === 0;
  }

  imageExists(ref: string): Promise<boolean> {
    return this.succeeds([this.binary, "image", "inspect", ref]);
  }
  networkExists(name: string): Promise<boolean> {
    return this.succeeds([this.binary, "network", "inspect", name]);
  }
  volumeExists(name: string): Promise<boolean> {
    return this.succeeds([this.binary, "volume", "inspect", name]);
  }

  async inspectContainer(name: string): Promise<ContainerState | undefined> {
    const r = await this.runner([this.binary, "container", "inspect", name]);
    if (r.exitCode !== 0) {
      if (/no such (container|object)|not found/i.test(r.stderr)) return undefined;
      throw new CommandError([this.binary, "container", "inspect", name], r);
    }
    return parseContainerState(r.stdout);
  }

  exec(name: string, cmd: readonly string[], opts: ExecOptions = {}) {
    const { input, stream, ...rest } = opts;
    const argv = this.execArgs(name, cmd, { ...rest, interactive: rest.interactive || input !== undefined });
    return this.runner(argv, { ...(input !== undefined ? { input } : {}), ...(stream ? { stream } : {}) });
  }

  abstract inEngineNetns(cmd: readonly string[], rootless: boolean, runtimeDir: string | undefined): Promise<string[] | undefined>;

  buildArgs(tag: string, contextDir: string): string[] {
    return [this.binary, "build", "-t", tag, contextDir];
  }
  networkCreateArgs(name: string, subnet: string, labels: Record<string, string>): string[] {
    return [this.binary, "network", "create", "--subnet", subnet, ...labelFlags(labels), name];
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
      ...spec.ports.flatMap((p) => ["--publish", `${p.host}:${p.container}/${p.protocol}`]),
      ...spec.mounts.flatMap((m) => ["--volume", `${m.source}:${m.target}${m.readOnly ? ":ro" : ""}`]),
      ...spec.tmpfs.flatMap((t) => ["--tmpfs", t]), // systemd wants a fresh /run and /tmp on every boot
      ...Object.entries(spec.sysctls).flatMap(([k, v]) => ["--sysctl", `${k}=${v}`]),
      ...Object.entries(spec.env).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
      ...labelFlags(spec.labels),
      ...this.annotationFlags(spec.annotations),
      spec.image,
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
  logsArgs(name: string, opts: { follow?: boolean; tail?: number }): string[] {
    return [
      this.binary,
      "logs",
      ...(opts.follow ? ["--follow"] : []),
      ...(opts.tail !== undefined ? ["--tail", String(opts.tail)] : []),
      name,
    ];
  }
  saveArgs(ref: string, file: string): string[] {
    return [this.binary, "save", "-o", file, ref];
  }
  loadArgs(file: string): string[] {
    return [this.binary, "load", "-i", file];
  }
}

/** labelFlags renders labels as --label k=v pairs. */
export function labelFlags(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
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
