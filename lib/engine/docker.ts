import type { EngineInfo, NodeFound, NodeLookup } from "./engine.ts";
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

/** DockerEngine drives the docker CLI (rootless dockerd). */
export class DockerEngine extends DockerLikeEngine {
  readonly name = "docker" as const;
  async info(): Promise<EngineInfo> {
    return parseDockerInfo((await this.infoJson()) as DockerInfo);
  }
  // One `docker inspect` for the container, the image and the volumes (see inspectNodeAtOnce).
  override lookUpNode(q: NodeLookup): Promise<NodeFound> {
    return this.inspectNodeAtOnce(q);
  }
  inEngineNetns(cmd: readonly string[], rootless: boolean, runtimeDir: string | undefined) {
    // Newer dockerd-rootless.sh keeps rootlesskit's state in dockerd-rootless/; older ones (Debian's
    // 20.10) leave only docker.pid, the daemon that runs inside the same namespaces.
    const files = runtimeDir ? [`${runtimeDir}/dockerd-rootless/child_pid`, `${runtimeDir}/docker.pid`] : [];
    return rootlesskitNetnsArgs(cmd, rootless, files);
  }
  protected reachHint(): string {
    return "start rootless Docker (`systemctl --user start docker`) and check DOCKER_HOST (unix://$XDG_RUNTIME_DIR/docker.sock)";
  }
}
