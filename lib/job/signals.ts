import type { StopSignals } from "./run.ts";

/** STOP_SIGNALS end a job's foreground process: Slurm sends SIGTERM (then SIGKILL after KillWait), Ctrl-C SIGINT, a closed terminal SIGHUP. */
export const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

/**
 * processStopSignals listens for STOP_SIGNALS: the first resolves `stopped`; later ones are
 * ignored, so a second Ctrl-C or a repeated SIGTERM does not cut the teardown short (SIGKILL does;
 * `u7s down --job` cleans up after it).
 */
export function processStopSignals(): StopSignals & { dispose(): void } {
  let resolve!: (name: string) => void;
  const stopped = new Promise<string>((r) => (resolve = r));
  // A signal handler does not keep the process alive: with nothing else pending, the foreground wait
  // would end the process at once (exit 0, the node left running). This timer keeps it until disposed.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const handlers = STOP_SIGNALS.map((name) => {
    const h = () => resolve(name);
    process.on(name, h);
    return [name, h] as const;
  });
  return {
    stopped,
    dispose: () => {
      clearInterval(keepAlive);
      for (const [name, h] of handlers) process.off(name, h);
    },
  };
}
