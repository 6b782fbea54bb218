// The VXLAN relay's host side at boot: a persistent systemd --user unit that `u7s up` writes and enables
// (WantedBy=default.target: with linger, the user's manager starts at boot and starts it, as it starts the
// rootless engine), and `u7s down` disables and removes. Without it, nothing would start the host side
// after a reboot, and with the relay on the engine does not publish PORT_FLANNEL: no VXLAN would arrive.
// u7s writes and removes only a unit file that carries its marker line: a unit of that name that the
// user wrote is never touched.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { XdgEnv } from "../state/paths.ts";

/** UNIT_MARKER is the first line of every unit u7s writes: what `down` (and a later `up`) may replace or remove. */
export const UNIT_MARKER = "# Written by u7s (`u7s up`); `u7s down` removes it. The VXLAN relay's host side of one node.";

/** PASSED_ENV: what the host side needs of the environment under systemd (the engine CLI and u7s's own directories). */
export const PASSED_ENV = ["PATH", "HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "DOCKER_HOST", "CONTAINER_HOST", "CONTAINERD_ADDRESS", "CONTAINER_ENGINE_TYPE"];

/** unitQuote quotes one word for a unit file (systemd.syntax(7) quoting, systemd.unit(5) "%" specifiers; exec: "$" too, systemd.service(5)). */
export function unitQuote(word: string, exec = false): string {
  let s = word.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%");
  if (exec) s = s.replace(/\$/g, "$$$$");
  return `"${s}"`;
}

/** HostUnitInput is what the host side's unit is written from. */
export interface HostUnitInput {
  /** host: the machine's real host name (ConditionHost=: on a home shared by hosts, the unit starts only on its own). */
  host: string;
  nodeName: string;
  /** binary: the persistent copy of u7s ($XDG_DATA_HOME/u7s/HOST/relay/u7s), not the `up` command's own path. */
  binary: string;
  /** args: the host side's arguments (hostRelayArgs). */
  args: readonly string[];
  logFile: string;
  env: XdgEnv;
}

/**
 * hostUnitText is the unit: Restart=on-failure with no start limit (systemd.unit(5) StartLimitIntervalSec=0):
 * at boot HOST_IP may come up after the user's manager (a user unit cannot wait for network-online.target), and
 * the host side fails to bind until it does. It exits 0 when its node is gone: then it stays stopped.
 */
export function hostUnitText(u: HostUnitInput): string {
  const env = PASSED_ENV.filter((k) => u.env[k] !== undefined && u.env[k] !== "").map((k) => `Environment=${unitQuote(`${k}=${u.env[k]}`)}`);
  const log = u.logFile.replace(/%/g, "%%");
  return [
    UNIT_MARKER,
    "[Unit]",
    `Description=u7s: VXLAN relay host side of node ${u.nodeName}`,
    `ConditionHost=${u.host}`,
    "StartLimitIntervalSec=0",
    "",
    "[Service]",
    ...env,
    `ExecStart=${[u.binary, ...u.args].map((w) => unitQuote(w, true)).join(" ")}`,
    "Restart=on-failure",
    "RestartSec=2",
    `StandardOutput=append:${log}`,
    `StandardError=append:${log}`,
    "",
    "[Install]",
    "WantedBy=default.target",
    "",
  ].join("\n");
}

/** hostUnitName is the host side's unit: per host and node (a home may be shared by hosts whose nodes have one name). */
export function hostUnitName(host: string, nodeName: string): string {
  return `u7s-vxlan-relay-${host}-${nodeName}.service`;
}

/** hostUnitFile is where the unit is written: $XDG_CONFIG_HOME/systemd/user (the user's own units, systemd.unit(5)). */
export function hostUnitFile(configHome: string, host: string, nodeName: string): string {
  return join(configHome, "systemd", "user", hostUnitName(host, nodeName));
}

/** ours tells whether a unit file is one u7s wrote (its marker line). */
function ours(file: string): boolean {
  try {
    return readFileSync(file, "utf8").startsWith(`${UNIT_MARKER}\n`);
  } catch {
    return false;
  }
}

/** writeHostUnit writes the unit (atomically) unless a unit of that name is not u7s's: "written", "same" (unchanged) or "foreign" (left alone). */
export function writeHostUnit(file: string, text: string): "written" | "same" | "foreign" {
  if (existsSync(file) && !ours(file)) return "foreign";
  if (existsSync(file) && readFileSync(file, "utf8") === text) return "same";
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
  return "written";
}

/** removeHostUnit removes the unit file when u7s wrote it: "removed", "foreign" (kept) or "none". */
export function removeHostUnit(file: string): "removed" | "foreign" | "none" {
  if (!existsSync(file)) return "none";
  if (!ours(file)) return "foreign";
  rmSync(file, { force: true });
  return "removed";
}

/** hostUnitArgv are the systemctl --user commands around the unit (systemctl(1)). */
export const hostUnitArgv = {
  daemonReload: ["systemctl", "--user", "daemon-reload"],
  enable: (unit: string) => ["systemctl", "--user", "enable", unit],
  start: (unit: string) => ["systemctl", "--user", "start", unit],
  resetFailed: (unit: string) => ["systemctl", "--user", "reset-failed", unit],
  /** disable --now: stops it and removes the default.target.wants link `enable` made. */
  disableNow: (unit: string) => ["systemctl", "--user", "disable", "--now", unit],
} as const;
