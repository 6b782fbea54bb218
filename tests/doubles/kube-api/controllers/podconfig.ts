// The test knob of the double's kubelet: how long a pod takes to start, per image, read from
// /etc/u7s-doubles/pods.json (or --pods-config) on every reconcile so a test can change it while
// the API runs. Shape (every field optional; a missing file means the defaults):
//   {"defaultStartDelaySeconds": 1, "startDelaySeconds": {"<substring of an image>": 8}, "neverStart": ["<substring>"]}
import { readFileSync } from "node:fs";

/** PodStartConfig is the parsed pods.json. */
export interface PodStartConfig {
  defaultStartDelaySeconds: number;
  startDelaySeconds: Record<string, number>;
  neverStart: string[];
}

/** DEFAULT_POD_START is what applies without a pods.json: every pod starts after 1 s. */
export const DEFAULT_POD_START: PodStartConfig = { defaultStartDelaySeconds: 1, startDelaySeconds: {}, neverStart: [] };

let lastError = "";

/** readPodStartConfig reads pods.json; a missing file gives the defaults, a bad one too (said once on stderr). */
export function readPodStartConfig(file: string | undefined): PodStartConfig {
  if (!file) return DEFAULT_POD_START;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return DEFAULT_POD_START;
  }
  try {
    return parsePodStartConfig(text);
  } catch (err) {
    const msg = `kube-api-double: ${file}: ${err instanceof Error ? err.message : String(err)}; using the defaults`;
    if (msg !== lastError) console.error(msg);
    lastError = msg;
    return DEFAULT_POD_START;
  }
}

/** parsePodStartConfig validates the JSON of pods.json. */
export function parsePodStartConfig(text: string): PodStartConfig {
  const j = JSON.parse(text) as Record<string, unknown>;
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Error("not a JSON object");
  const known = ["defaultStartDelaySeconds", "startDelaySeconds", "neverStart"];
  for (const k of Object.keys(j)) if (!known.includes(k)) throw new Error(`unknown field ${JSON.stringify(k)} (valid: ${known.join(", ")})`);
  const def = j.defaultStartDelaySeconds ?? DEFAULT_POD_START.defaultStartDelaySeconds;
  if (typeof def !== "number" || def < 0) throw new Error("defaultStartDelaySeconds: not a number >= 0");
  const delays = (j.startDelaySeconds ?? {}) as Record<string, unknown>;
  if (typeof delays !== "object" || Array.isArray(delays)) throw new Error("startDelaySeconds: not an object");
  for (const [k, v] of Object.entries(delays)) if (typeof v !== "number" || v < 0) throw new Error(`startDelaySeconds.${k}: not a number >= 0`);
  const never = j.neverStart ?? [];
  if (!Array.isArray(never) || never.some((s) => typeof s !== "string")) throw new Error("neverStart: not a list of strings");
  return { defaultStartDelaySeconds: def, startDelaySeconds: delays as Record<string, number>, neverStart: never as string[] };
}

/** startDelayMs is how long a pod with these images takes to start: the longest delay any image matches, the default when none does; undefined when it never starts. */
export function startDelayMs(cfg: PodStartConfig, images: string[]): number | undefined {
  if (images.some((img) => cfg.neverStart.some((s) => img.includes(s)))) return undefined;
  const matched = images.flatMap((img) => Object.entries(cfg.startDelaySeconds).filter(([s]) => img.includes(s)).map(([, d]) => d));
  return 1000 * (matched.length > 0 ? Math.max(...matched) : cfg.defaultStartDelaySeconds);
}
