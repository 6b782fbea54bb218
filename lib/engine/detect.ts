import type { NodeConfig } from "../config/resolve.ts";
import { U7sError } from "../errors.ts";
import type { Runner } from "../exec.ts";
import type { Engine } from "./engine.ts";
import { ENGINES } from "./types.ts";
import { DockerEngine } from "./docker.ts";
import { NerdctlEngine } from "./nerdctl.ts";
import { PodmanEngine } from "./podman.ts";

/** detectEngine returns the driver for the configured engine; the only importer of the drivers. */
export function detectEngine(config: NodeConfig, runner: Runner): Engine {
  if (config.containerEngine === undefined || config.containerEngineType === undefined) {
    throw new U7sError(config.engineNotFound ?? "no container engine found", {
      hint: "install rootless Docker, Podman or nerdctl, or set CONTAINER_ENGINE",
    });
  }
  switch (config.containerEngineType) {
    case "docker":
      return new DockerEngine(config.containerEngine, runner);
    case "podman":
      return new PodmanEngine(config.containerEngine, runner);
    case "nerdctl":
      return new NerdctlEngine(config.containerEngine, runner);
  }
}

/**
 * otherEngines are the drivers of the engine CLIs on PATH other than the configured one: a user's
 * nodes on every engine share the user's limits (inotify), as `u7s ls` lists them all.
 */
export function otherEngines(config: NodeConfig, runner: Runner, which: (bin: string) => string | undefined): Engine[] {
  return ENGINES.filter((e) => e !== config.containerEngineType && which(e) !== undefined).map((e) => detectEngine({ ...config, containerEngine: e, containerEngineType: e }, runner));
}

/** engineNote says which engine is used and why, as kind does ("using podman due to CONTAINER_ENGINE"). */
export function engineNote(config: NodeConfig): string | undefined {
  const source = config.sources.CONTAINER_ENGINE;
  if (source === "flag") return `using ${config.containerEngine} due to --container-engine`;
  if (source === "env") return `using ${config.containerEngine} due to CONTAINER_ENGINE`;
  return undefined;
}
