import { MOUNT_ENV, MOUNT_SYNTAX, PUBLISH_ENV, PUBLISH_SYNTAX, type PublishMountFlags } from "../config/publish.ts";
import { SETTINGS, type SettingFlags } from "../config/settings.ts";
import { UsageError } from "../errors.ts";
import type { Args, OptionDef } from "./_types.ts";

/** settingOptions are the flags every settings-reading command accepts, one per upstream variable. */
export const settingOptions: Record<string, OptionDef> = Object.fromEntries(
  Object.values(SETTINGS).map((s) => [
    s.flag,
    { type: "string", value: s.env, description: `${s.help} (overrides ${s.env})` } satisfies OptionDef,
  ]),
);

/** publishMountOptions are `up`'s (and `render`'s) repeatable --publish and --mount. */
export const publishMountOptions: Record<string, OptionDef> = {
  publish: { type: "string", multiple: true, value: "PORT", description: `also publish a node port on the host, ${PUBLISH_SYNTAX}; repeatable (overrides ${PUBLISH_ENV})` },
  mount: { type: "string", multiple: true, value: MOUNT_SYNTAX, description: `mount this host path into the node; repeatable (overrides ${MOUNT_ENV})` },
};

/** settingFlags picks the setting flags (and --publish / --mount, where a command has them) out of parsed args. */
export function settingFlags(args: Args): SettingFlags & PublishMountFlags {
  const flags: SettingFlags & PublishMountFlags = {};
  for (const k of ["publish", "mount"] as const) {
    const v = args.values[k];
    if (Array.isArray(v)) flags[k] = v.filter((x): x is string => typeof x === "string");
  }
  for (const [key, s] of Object.entries(SETTINGS) as [keyof SettingFlags, (typeof SETTINGS)[keyof SettingFlags]][]) {
    const v = args.values[s.flag];
    if (typeof v === "string") flags[key] = v;
  }
  return flags;
}

/** jsonFlag is the --json flag shared by commands with machine-readable output. */
export const jsonFlag: Record<string, OptionDef> = {
  json: { type: "boolean", description: "print JSON instead of text" },
};

/** dryRunFlag is --dry-run: print the engine commands, one per line, and run none. */
export const dryRunFlag: Record<string, OptionDef> = {
  "dry-run": { type: "boolean", description: "print the engine commands that would run, one per line, and run none" },
};

/** stringFlag reads a string flag, or undefined. */
export function stringFlag(args: Args, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === "string" ? v : undefined;
}

/** boolFlag reads a boolean flag. */
export function boolFlag(args: Args, name: string): boolean {
  return args.values[name] === true;
}

/** positiveSeconds parses a duration flag in seconds, or throws a UsageError naming it. */
export function positiveSeconds(args: Args, name: string, fallback: number): number {
  const v = stringFlag(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || !(n > 0)) {
    throw new UsageError(`--${name}=${JSON.stringify(v)}: not a duration in seconds (valid: a positive number, e.g. 120)`);
  }
  return n;
}
