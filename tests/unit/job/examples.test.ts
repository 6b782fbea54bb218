// examples/slurm.sbatch and examples/flux.sh: valid bash, and the same u7s steps (tests/e2e/job.test.ts
// runs slurm.sbatch's per-node line on hosts E and F).
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "../../..");

test.each(["examples/slurm.sbatch", "examples/flux.sh"])("%s: bash -n passes; it brings the cluster up, waits for it, and cleans up with u7s's job commands", (file) => {
  const r = Bun.spawnSync(["bash", "-n", join(root, file)]);
  expect(r.exitCode).toBe(0);
  const text = readFileSync(join(root, file), "utf8");
  const steps = ['"$U7S" up --job --image-archive "$IMAGES"', '"$U7S" kubeconfig --job --nodes', '"$U7S" down --job'];
  expect(steps.map((s) => text.indexOf(s) > 0)).toEqual([true, true, true]);
  // in that order: up in the background, the wait, SIGTERM to the u7s step, then down --job
  expect(steps.map((s) => text.indexOf(s))).toEqual(steps.map((s) => text.indexOf(s)).sort((a, b) => a - b));
  expect(text).toMatch(/SIGTERM|kill -TERM/);
});
