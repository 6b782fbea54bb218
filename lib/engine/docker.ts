import type { EngineInfo, NodeFound, NodeLookup, RootlessNetwork, RootlessNetworkProbe } from "./engine.ts";
import { DockerLikeEngine, rootlesskitNetnsArgs } from "./base.ts";

interface DockerInfo {
  SecurityOptions?: string[];
  CgroupVersion?: string;
  CgroupDriver?: string;
  ServerVersion?: string;
}

/** parseDockerInfo reads `docker info --format '{{json .}}'` (nerdctl prints the same shape). */
export function parseDockerInfo(info: DockerInfo): EngineInfo {
  return {
    // rootless daemons list "name=rootless" among their security options
    rootless: (info.SecurityOptions ?? []).some((o) => o.split(",").includes("name=rootless")),
    cgroupVersion: info.CgroupVersion === "2" ? 2 : info.CgroupVersion === "1" ? 1 : undefined,
    cgroupDriver: info.CgroupDriver,
    version: info.ServerVersion ?? "",
  };
}

/** DOCKER_PID_FILES (under XDG_RUNTIME_DIR): rootlesskit's child in newer dockerd-rootless.sh, else the daemon (Debian's 20.10). */
const DOCKER_PID_FILES = ["dockerd-rootless/child_pid", "docker.pid"] as const;

interface DockerVersionServer {
  Components?: { Name?: string; Version?: string; Details?: Record<string, string> | null }[] | null;
}

/**
 * parseDockerVersion reads RootlessKit from `docker version --format '{{json .Server}}'`: a rootless
 * daemon lists a "rootlesskit" component with its NetworkDriver, and the slirp4netns or vpnkit it
 * runs (moby's fillRootlessVersion; Docker 20.10 as Debian 12 packages it lists none).
 */
export function parseDockerVersion(server: DockerVersionServer): RootlessNetwork {
  const components = server.Components ?? [];
  const kit = components.find((c) => c.Name === "rootlesskit");
  const slirp = components.find((c) => c.Name === "slirp4netns");
  return {
    mode: kit?.Details?.NetworkDriver || undefined,
    ...(kit?.Version ? { rootlesskit: kit.Version } : {}),
    tools: slirp ? { slirp4netns: slirp.Version ?? "" } : {},
  };
}

/** DockerEngine drives the docker CLI (rootless dockerd). */
export class DockerEngine extends DockerLikeEngine {
  readonly name = "docker" as const;
  async info(): Promise<EngineInfo> {
    return parseDockerInfo((await this.infoJson()) as DockerInfo);
  }
  // `docker info` says nothing of RootlessKit; `docker version` does (one more daemon call, doctor only).
  override async rootlessNetwork(info: EngineInfo, probe: RootlessNetworkProbe): Promise<RootlessNetwork> {
    if (!info.rootless) return { mode: undefined, tools: {} };
    const r = await this.runner([this.binary, "version", "--format", "{{json .Server}}"]);
    let told: RootlessNetwork = { mode: undefined, tools: {} };
    try {
      if (r.exitCode === 0) told = parseDockerVersion(JSON.parse(r.stdout) as DockerVersionServer);
    } catch {
      // not JSON: what RootlessKit's command line says
    }
    return this.rootlesskitNetwork(told, probe, DOCKER_PID_FILES);
  }
  // One `docker inspect` for the container, the image and the volumes (see inspectNodeAtOnce).
  override lookUpNode(q: NodeLookup): Promise<NodeFound> {
    return this.inspectNodeAtOnce(q);
  }
  inEngineNetns(cmd: readonly string[], rootless: boolean, runtimeDir: string | undefined) {
    // Newer dockerd-rootless.sh keeps rootlesskit's state in dockerd-rootless/; older ones (Debian's
    // 20.10) leave only docker.pid, the daemon that runs inside the same namespaces.
    const files = runtimeDir ? DOCKER_PID_FILES.map((f) => `${runtimeDir}/${f}`) : [];
    return rootlesskitNetnsArgs(cmd, rootless, files);
  }
  protected reachHint(): string {
    return "start rootless Docker (`systemctl --user start docker`) and check DOCKER_HOST (unix://$XDG_RUNTIME_DIR/docker.sock)";
  }
}
