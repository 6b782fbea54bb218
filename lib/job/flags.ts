import type { Args, OptionDef } from "../commands/_types.ts";
import { UsageError } from "../errors.ts";

/** DEFAULT_JOIN_WAIT is how long a worker waits for the control plane's join file (--timeout with --job). */
export const DEFAULT_JOIN_WAIT = 600;

/** jobOptions are the flags `up --job` and `down --job` share. */
export const jobOptions: Record<string, OptionDef> = {
  job: { type: "boolean", description: "a cluster for the length of a batch job (Slurm, Flux): see \"Batch jobs (--job)\" above" },
  "job-id": { type: "string", value: "ID", description: "the job's id, the same on every host (overrides U7S_JOB_ID, SLURM_JOB_ID, FLUX_JOB_ID)" },
  "control-plane": { type: "string", value: "HOST", description: "--job: the host that runs the control plane (default: the first host of SLURM_JOB_NODELIST or FLUX_JOB_NODELIST)" },
  scratch: { type: "string", value: "DIR", description: "--job: node-local directory for the node, the private engine and u7s's state (default $TMPDIR or /tmp)" },
};

/** jobUpOptions are the flags only `up --job` has. */
export const jobUpOptions: Record<string, OptionDef> = {
  "engine-start": { type: "string", value: "WHEN", description: "--job: auto (default) starts a private engine when none answers; never uses yours as it is" },
  "image-archive": { type: "string", value: "FILE", description: "--job: load the node image from this file first (`docker save` / `podman save` archive, or a bundle of `u7s image save`)" },
};

/** JOB_HELP is what `u7s up --help` and `u7s down --help` say about --job. */
export const JOB_HELP =
  "Batch jobs (--job): run `u7s up --job` on every host of the allocation, in any order (one srun / flux\n" +
  "run task per node). The --control-plane host (default: the first of the job's node list) brings up the\n" +
  "control plane and writes its join file and kubeconfig to $XDG_STATE_HOME/u7s/jobs/JOB_ID/ in the shared\n" +
  "home (or, if it fails, failed.json with its reason); every other host brings up its node meanwhile, waits\n" +
  "for the join file (--timeout, default 600 s), validates it and joins. Progress goes to stderr, each line\n" +
  "starting with [HOST]; the exit status is 0 only once this host's node is Ready. The node, its engine's\n" +
  "data and u7s's state live in SCRATCH/u7s-UID-HOST-JOBID on node-local disk (--scratch); with no engine\n" +
  "answering, u7s starts a private one there (Podman: always its own storage there). The job's tenant is\n" +
  "1 + job id mod 99 unless --tenant / U7S_TENANT says otherwise, its NODE_SUBNET 10.(100+tenant).I.0/24\n" +
  "with I the host's place in the node list (unless NODE_SUBNET is set). Then `up --job` prints\n" +
  "`export KUBECONFIG=...` and stays in the foreground: SIGTERM, SIGINT or SIGHUP removes this host's node\n" +
  "with its volumes, stops the private engine, removes the scratch directory and, on the control plane's\n" +
  "host, the job's files in the home. `u7s down --job` does the same (as the job's user: the script's last\n" +
  "step, a TaskEpilog), also after a SIGKILL.";

/** ENGINE_STARTS are the values of --engine-start. */
export const ENGINE_STARTS = ["auto", "never"] as const;
/** EngineStart: auto starts a private engine when none answers (Podman: always its own storage in scratch); never uses the user's engine as it is. */
export type EngineStart = (typeof ENGINE_STARTS)[number];

/** refuseJobFlags refuses --job's own flags without --job (they would do nothing). */
export function refuseJobFlags(args: Args, names: readonly string[]): void {
  const given = names.find((n) => n !== "job" && args.values[n] !== undefined);
  if (given !== undefined) throw new UsageError(`--${given} goes with --job (a cluster for a batch job); without --job it does nothing`, { hint: "add --job, or leave it out" });
}
