import type { EngineInfo, RootlessNetwork, RootlessNetworkProbe } from "./engine.ts";
import { DockerLikeEngine, rootlesskitNetnsArgs } from "./base.ts";
import { parseDockerInfo } from "./docker.ts";

/** NerdctlEngine drives nerdctl (rootless containerd); it alone understands the bypass4netns annotations. */
export class NerdctlEngine extends DockerLikeEngine {
  readonly name = "nerdctl" as const;
  async info(): Promise<EngineInfo> {
    return parseDockerInfo((await this.infoJson()) as Parameters<typeof parseDockerInfo>[0]);
  }
  // nerdctl info says nothing of RootlessKit: containerd-rootless.sh's child process does.
  override rootlessNetwork(info: EngineInfo, probe: RootlessNetworkProbe): Promise<RootlessNetwork> {
    if (!info.rootless) return Promise.resolve({ mode: undefined, tools: {} });
    return this.rootlesskitNetwork({ mode: undefined, tools: {} }, probe, ["containerd-rootless/child_pid"]);
  }
  inEngineNetns(cmd: readonly string[], rootless: boolean, runtimeDir: string | undefined) {
    return rootlesskitNetnsArgs(cmd, rootless, runtimeDir ? [`${runtimeDir}/containerd-rootless/child_pid`] : []);
  }
  protected reachHint(): string {
    return "start rootless containerd (`containerd-rootless-setuptool.sh install`) and check `nerdctl info`";
  }
  protected override annotationFlags(annotations: Record<string, string>): string[] {
    return Object.entries(annotations).flatMap(([k, v]) => ["--annotation", `${k}=${v}`]);
  }
}
