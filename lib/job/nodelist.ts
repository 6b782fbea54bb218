// PLACEHOLDER (job-flow) with the signatures of JOB-CONTRACT.md until job-host's lib/job/nodelist.ts lands: replaced on merge.

/** expandHostlist expands a Slurm/Flux host list (placeholder: no ranges). */
export function expandHostlist(s: string): string[] {
  return s.split(",").filter(Boolean);
}

/** controlPlaneHost is the flag, else the first host of SLURM_JOB_NODELIST / FLUX_JOB_NODELIST. */
export function controlPlaneHost(env: Readonly<Record<string, string | undefined>>, flag: string | undefined): string | undefined {
  if (flag) return flag;
  const list = env.SLURM_JOB_NODELIST ?? env.FLUX_JOB_NODELIST;
  return list ? expandHostlist(list)[0] : undefined;
}
