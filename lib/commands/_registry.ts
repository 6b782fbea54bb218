import type { CommandDef } from "./_types.ts";
import { checkPreflight } from "./check-preflight.ts";
import { completion } from "./completion.ts";
import { config } from "./config.ts";
import { doctor } from "./doctor.ts";
import { down, downV } from "./down.ts";
import { exec } from "./exec.ts";
import { exportLogs } from "./export-logs.ts";
import { image } from "./image.ts";
import { initHost } from "./init-host.ts";
import { installFlannel } from "./install-flannel.ts";
import { joinCommand } from "./join-command.ts";
import { kubeadmInit } from "./kubeadm-init.ts";
import { kubeadmJoin } from "./kubeadm-join.ts";
import { kubeadmReset } from "./kubeadm-reset.ts";
import { kubeconfig } from "./kubeconfig.ts";
import { kubectl, kubectlBinary } from "./kubectl.ts";
import { loadImage } from "./load-image.ts";
import { logs } from "./logs.ts";
import { port } from "./port.ts";
import { ls } from "./ls.ts";
import { render } from "./render.ts";
import { shell } from "./shell.ts";
import { smokeTest } from "./smoke-test.ts";
import { status } from "./status.ts";
import { syncExternalIp } from "./sync-external-ip.ts";
import { up } from "./up.ts";
import { version } from "./version.ts";
import { vxlanRelay } from "./vxlan-relay.ts";

/** COMMANDS is the whole command surface, in help order. */
export const COMMANDS: readonly CommandDef[] = [
  up,
  down,
  downV,
  shell,
  exec,
  logs,
  exportLogs,
  status,
  port,
  ls,
  vxlanRelay,
  checkPreflight,
  doctor,
  initHost,
  kubeadmInit,
  kubeadmJoin,
  kubeadmReset,
  joinCommand,
  kubeconfig,
  kubectl,
  kubectlBinary,
  syncExternalIp,
  installFlannel,
  smokeTest,
  image,
  loadImage,
  config,
  render,
  version,
  completion,
];

/** findCommand finds a command by name or alias. */
export function findCommand(name: string): CommandDef | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}
