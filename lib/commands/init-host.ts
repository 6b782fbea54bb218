import { detectDistro, sudoUser } from "../host/doctor.ts";
import { applyPlan, renderPlan, rootNeeds, rootPlan, userPlan, type HostStep } from "../host/init-host.ts";
import type { EngineName } from "../engine/types.ts";
import { U7sError, UsageError } from "../errors.ts";
import { boolFlag, dryRunFlag, stringFlag } from "./_shared.ts";
import type { CommandDef, Ctx } from "./_types.ts";

const NAME = /^[a-z_][a-z0-9_-]*[$]?$/;

/** targetUser is the user root prepares the host for: --user, else sudo's invoking user. */
function targetUser(ctx: Ctx, flag: string | undefined): { name: string; uid: number } | undefined {
  const name = flag ?? (ctx.env.SUDO_USER && ctx.env.SUDO_USER !== "root" ? ctx.env.SUDO_USER : undefined);
  if (name === undefined) return undefined;
  if (!NAME.test(name) || name === "root") throw new UsageError(`--user=${JSON.stringify(name)}: not an unprivileged user name (valid: a login name other than root, e.g. alice)`);
  const user = sudoUser(ctx.host, name);
  if (!user) throw new UsageError(`--user=${JSON.stringify(name)}: no such user in /etc/passwd`);
  return user;
}

/** initHost prepares this host for u7s: root-side steps as root, the rootless engine as the user. */
export const initHost: CommandDef = {
  name: "init-host",
  group: "node",
  summary: "prepare this host: root steps as root, the rootless engine as the user",
  description:
    "As root (upstream's init-host.root.sh): installs the engine's packages with the distribution's package\n" +
    "manager, delegates cgroup controllers to users' services, merges upstream's 22 kernel modules into\n" +
    "/etc/modules-load.d/usernetes.conf (keeping every line there) and loads them, merges rp_filter loose and\n" +
    "the inotify limits (max_user_instances 512, max_user_watches 524288, as kind advises) and the kernel key\n" +
    "quota (kernel.keys.maxkeys 2000, maxbytes 2000000, as LXD advises; never lowered)\n" +
    "into /etc/sysctl.d/99-usernetes.conf, and for the user (--user, or the one running sudo) adds sub-IDs\n" +
    "and enables linger. As the user (init-host.rootless.sh): sets up the rootless engine (Docker:\n" +
    "dockerd-rootless-setuptool.sh; Podman 5 and 6: pasta given an address of its own in\n" +
    "~/.config/containers/containers.conf.d/u7s-pasta.conf, podman-restart.service).\n" +
    "It first prints the plan, then applies it, one progress line per step; --dry-run prints the plan only,\n" +
    "as a shell script. Refuses the user steps while root's are missing, and says which. Every step is safe\n" +
    "to repeat. Engine: CONTAINER_ENGINE, else the one installed, else Podman.",
  settings: true,
  options: {
    user: { type: "string", value: "NAME", description: "as root: the user who will run u7s (default: the user running sudo)" },
    ...dryRunFlag,
  },
  examples: ["sudo u7s init-host --dry-run", "sudo u7s init-host --user alice", "u7s init-host"],
  async run(ctx, args) {
    const dryRun = boolFlag(args, "dry-run");
    const me = ctx.host.user();
    const userFlag = stringFlag(args, "user");
    if (me.uid !== 0 && userFlag !== undefined && userFlag !== me.name) {
      throw new UsageError(`--user=${JSON.stringify(userFlag)}: only root prepares the host for another user (you are ${me.name})`, { hint: `sudo u7s init-host --user ${userFlag}` });
    }
    const config = await ctx.config();
    const engine: EngineName = config.containerEngineType ?? "podman";
    const distro = detectDistro(ctx.host);
    let steps: HostStep[];
    if (me.uid === 0) {
      const user = targetUser(ctx, userFlag);
      steps = rootPlan({ host: ctx.host, distro, engine, user });
      if (!dryRun) ctx.log.info(`init-host as root on ${distro.name}, engine ${engine}${user ? `, for user ${user.name}` : ""}; then run \`u7s init-host\` as ${user?.name ?? "the user"}`);
    } else {
      const engineBinary = config.containerEngine ?? engine;
      let podmanVersion: string | undefined;
      if (engine === "podman" && ctx.host.which(engineBinary)) {
        const r = await ctx.runner([engineBinary, "--version"]);
        podmanVersion = /(\d+\.\d+(\.\d+)?)/.exec(r.stdout)?.[1];
      }
      const input = { host: ctx.host, distro, engine, engineBinary, user: me, home: ctx.env.HOME, podmanVersion };
      const missing = rootNeeds(input);
      steps = userPlan(input);
      if (missing.length > 0) {
        if (dryRun) steps.unshift({ title: "Needs root first (`sudo u7s init-host`)", actions: missing.map((m) => ({ kind: "note" as const, text: m })) });
        else {
          throw new U7sError(`init-host as ${me.name}: root must prepare this host first`, {
            detail: missing.join("\n"),
            hint: `run \`sudo u7s init-host --user ${me.name}\`, then \`u7s init-host\` again as ${me.name}`,
          });
        }
      }
    }
    if (dryRun) {
      ctx.out.write(renderPlan(steps));
      return;
    }
    ctx.log.info(renderPlan(steps).replace(/\n$/, "").replace(/^/gm, "  "));
    await applyPlan(steps, ctx.runner, ctx.log);
    ctx.log.info(me.uid === 0 ? "done: now run `u7s init-host` as the user, then `u7s doctor`" : "done: check with `u7s doctor`");
  },
};
