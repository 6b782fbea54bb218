import type { NodeConfig } from "../config/resolve.ts";
import { U7sError } from "../errors.ts";
import type { Runner } from "../exec.ts";
import type { Engine } from "./engine.ts";
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

/** engineNote says which engine is used and why, as kind does ("using podman due to CONTAINER_ENGINE"). */
export function engineNote(config: NodeConfig): string | undefined {
  const source = config.sources.CONTAINER_ENGINE;
  if (source === "flag") return `using ${config.containerEngine} due to --container-engine`;
  if (source === "env") return `using ${config.containerEngine} due to CONTAINER_ENGINE`;
  return undefined;
}
