import type { EngineInfo, NetworkInfo } from "./engine.ts";
import { DockerLikeEngine } from "./base.ts";

interface PodmanInfo {
  host?: { security?: { rootless?: boolean }; cgroupVersion?: string; cgroupManager?: string };
  version?: { Version?: string };
}

/** parsePodmanInfo reads `podman info --format '{{json .}}'`. */
export function parsePodmanInfo(info: PodmanInfo): EngineInfo {
  const v = info.host?.cgroupVersion;
  return {
    rootless: info.host?.security?.rootless === true,
    cgroupVersion: v === "v2" ? 2 : v === "v1" ? 1 : undefined,
    cgroupDriver: info.host?.cgroupManager,
    version: info.version?.Version ?? "",
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
  async info(): Promise<EngineInfo> {
    return parsePodmanInfo((await this.infoJson()) as PodmanInfo);
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
