// PLACEHOLDER (job-flow) with the signatures of JOB-CONTRACT.md until job-host's lib/engine/private.ts lands: replaced on merge.
import { U7sError } from "../errors.ts";
import type { Runner } from "../exec.ts";
import type { Log } from "../log.ts";

/** PrivateEngine is a rootless engine u7s started for a job. */
export interface PrivateEngine {
  engine: "docker" | "podman";
  env: Record<string, string>;
  pid: number | undefined;
  stop(): Promise<void>;
}

/** startPrivateEngine starts a private engine in scratch (placeholder). */
export async function startPrivateEngine(_o: { engine: "docker" | "podman"; scratch: string; log: Log; runner: Runner }): Promise<PrivateEngine> {
  throw new U7sError("private engines are not built yet (job-host)");
}

/** findPrivateEngine finds the private engine started in scratch (placeholder). */
export async function findPrivateEngine(_scratch: string, _o?: { log: Log; runner: Runner }): Promise<PrivateEngine | undefined> {
  return undefined;
}
