import { describe, expect, test } from "bun:test";
import pkg from "../../package.json" with { type: "json" };
import { SETTINGS } from "../../lib/config/settings.ts";
import { COMMANDS } from "../../lib/commands/_registry.ts";
import { nodeSubnet } from "../../lib/net.ts";
import { FAKE_HOST_IP, FAKE_HOSTNAME, RecordingRunner, runCli, UPSTREAM_NAMES } from "../fixtures/fakes.ts";
import { wrongRows } from "../fixtures/table.ts";

const UPSTREAM_ORDER: string[] = [...UPSTREAM_NAMES];
// Settings u7s adds after upstream's; `config` may print these after the upstream ones.
const U7S_ONLY = ["HOST_IP_INTERFACE", "U7S_TENANT", "U7S_VXLAN_RELAY", "NODE_MTU", "U7S_PUBLISH", "U7S_MOUNT"];

/** parseConfig reads `u7s config` output into [name, value] pairs, in order. */
function parseConfig(stdout: string): [string, string][] {
  return stdout
    .trimEnd()
    .split("\n")
    .map((line) => {
      const eq = line.indexOf("=");
      expect(eq).toBeGreaterThan(0);
      return [line.slice(0, eq), line.slice(eq + 1)];
    });
}

const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("error: "));

describe("help", () => {
  test("u7s --help, -h, help, nothing, and --debug --help: exit 0, every command and alias listed, nothing run", async () => {
    const got = async (argv: string[]) => {
      const r = await runCli(argv);
      const missing = COMMANDS.flatMap((c) => [
        ...(new RegExp(`^  ${c.name} +${c.summary.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "m").test(r.stdout) ? [] : [c.name]),
        ...(c.aliases ?? []).filter((a) => !r.stdout.includes(a)),
      ]);
      return { code: r.code, stderr: r.stderr, usage: r.stdout.includes("Usage: u7s COMMAND"), missing, calls: r.runner.calls };
    };
    const ok = { code: 0, stderr: "", usage: true, missing: [], calls: [] };
    expect(await wrongRows([["--help"], ["-h"], [], ["help"], ["--debug", "--help"]].map((argv) => [argv, ok] as const), got)).toEqual([]);
  });

  test("the surface keeps upstream's Makefile targets", () => {
    const names = COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
    for (const target of [
      "up", "down", "down-v", "render", "check-preflight", "shell", "logs", "kubeconfig", "kubectl",
      "join-command", "kubeadm-init", "kubeadm-join", "kubeadm-reset", "sync-external-ip", "install-flannel",
    ]) {
      expect(names).toContain(target);
    }
  });

  // Commands with rawArgs (kubectl) hand --help to the program they run: their help is `u7s help NAME`.
  const OWN_FLAGS = COMMANDS.filter((c) => !c.rawArgs);

  test("u7s NAME --help (u7s help NAME for rawArgs commands), for every command and alias: exit 0, its usage, its setting flags, nothing run or probed", async () => {
    const names = COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
    const got = async (name: string) => {
      const c = COMMANDS.find((x) => x.name === name || x.aliases?.includes(name))!;
      const r = await runCli(c.rawArgs ? ["help", name] : [name, "--help"], { host: { binaries: [] } });
      const missing = [
        `u7s ${c.name}: ${c.summary}\n`,
        `Usage: u7s ${c.name}`,
        "--help",
        ...(c.settings ? Object.values(SETTINGS).map((s) => `--${s.flag} ${s.env}`) : []),
      ].filter((want) => !r.stdout.includes(want));
      return { code: r.code, stderr: r.stderr, startsWithSummary: r.stdout.startsWith(`u7s ${c.name}: `), missing, calls: [...r.runner.calls, ...r.host.calls] };
    };
    const ok = { code: 0, stderr: "", startsWithSummary: true, missing: [], calls: [] };
    expect(await wrongRows(names.map((n) => [n, ok] as const), got)).toEqual([]);
  });

  test("u7s help NAME and u7s NAME -h print what u7s NAME --help prints, for every command with its own flags", async () => {
    const got = async (name: string) => {
      const want = (await runCli([name, "--help"])).stdout;
      const viaHelp = await runCli(["help", name]);
      const viaH = await runCli([name, "-h"]);
      return [viaHelp.code, viaHelp.stdout === want, viaH.code, viaH.stdout === want];
    };
    expect(await wrongRows(OWN_FLAGS.map((c) => [c.name, [0, true, 0, true]] as const), got)).toEqual([]);
  });
});

describe("mistakes", () => {
  test("an unknown command exits 2 and suggests the nearest (typos, swaps, a dropped letter)", async () => {
    const rows = [
      ["upp", "up"],
      ["confg", "config"],
      ["cofnig", "config"],
      ["verison", "version"],
      ["stauts", "status"],
      ["kubeadm-int", "kubeadm-init"],
      ["donw", "down"],
    ] as const;
    const got = async (typo: string) => {
      const r = await runCli([typo]);
      return { code: r.code, stdout: r.stdout, errors: errorLines(r.stderr), hint: /did you mean `u7s ([^`]+)`/.exec(r.stderr)?.[1], calls: r.runner.calls };
    };
    const want = (typo: string, near: string) => ({ code: 2, stdout: "", errors: [`error: unknown command ${JSON.stringify(typo)}`], hint: near, calls: [] });
    expect(await wrongRows(rows.map(([typo, near]) => [typo, want(typo, near)] as const), got)).toEqual([]);
  });

  test("an unknown command far from every name suggests nothing", async () => {
    const r = await runCli(["xyzzyplugh"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: unknown command "xyzzyplugh"');
    expect(r.stderr).not.toContain("did you mean");
    expect(r.stderr).toContain("u7s --help");
  });

  test("help for an unknown command is an unknown command", async () => {
    const r = await runCli(["help", "confg"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("did you mean `u7s config`?");
  });

  test("an unknown flag (global, a command's, a near miss, another command's, short, after --help) exits 2 naming it", async () => {
    const rows = [
      [["--bogus"], "--bogus"],
      [["config", "--bogus"], "--bogus"],
      [["config", "--port-etc", "1"], "--port-etc"],
      [["version", "--port-etcd", "1"], "--port-etcd"],
      [["version", "-x"], "-x"],
      [["--help", "--bogus"], "--bogus"],
    ] as const;
    const got = async ([argv, flag]: readonly [readonly string[], string]) => {
      const r = await runCli([...argv]);
      const errors = errorLines(r.stderr);
      return { code: r.code, stdout: r.stdout, errors: errors.length, named: errors[0]?.includes(flag), help: r.stderr.includes("--help"), calls: r.runner.calls };
    };
    const ok = { code: 2, stdout: "", errors: 1, named: true, help: true, calls: [] };
    expect(await wrongRows(rows.map((r) => [r, ok] as const), got)).toEqual([]);
  });

  test("an unexpected argument exits 2", async () => {
    const got = async (argv: string[]) => {
      const r = await runCli(argv);
      return [r.code, errorLines(r.stderr)[0]?.includes("unexpected argument")];
    };
    expect(await wrongRows([["config", "extra"], ["version", "1", "2"]].map((a) => [a, [2, true]] as const), got)).toEqual([]);
  });

  test("a setting flag without its value exits 2", async () => {
    const r = await runCli(["config", "--port-etcd"]);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)[0]).toContain("--port-etcd");
  });
});

describe("version", () => {
  test("prints the package version and the pinned Kubernetes", async () => {
    const r = await runCli(["version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`u7s ${pkg.version}\n`);
    expect(r.stdout).toContain("kubernetes v1.35.0\n");
    expect(r.stdout).toContain("kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f");
    expect(r.runner.calls).toEqual([]);
    expect(r.host.calls).toEqual([]);
  });

  test("--json", async () => {
    const r = await runCli(["version", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ u7s: pkg.version, kubernetes: "v1.35.0" });
  });

  test("the main help names the version", async () => {
    const r = await runCli(["--help"]);
    expect(r.stdout).toStartWith(`u7s ${pkg.version}:`);
  });
});

describe("config", () => {
  const HOST = { binaries: ["podman"], hostname: FAKE_HOSTNAME };

  test("prints NAME=value lines in upstream's order", async () => {
    const r = await runCli(["config"], { host: HOST });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const entries = parseConfig(r.stdout);
    expect(entries.map(([k]) => k).slice(0, UPSTREAM_ORDER.length)).toEqual(UPSTREAM_ORDER);
    for (const [k] of entries.slice(UPSTREAM_ORDER.length)) expect(U7S_ONLY).toContain(k);
    const subnet = nodeSubnet(FAKE_HOSTNAME);
    expect(Object.fromEntries(entries)).toMatchObject({
      CONTAINER_ENGINE: "podman",
      CONTAINER_ENGINE_TYPE: "podman",
      HOSTNAME: FAKE_HOSTNAME,
      HOST_IP: FAKE_HOST_IP,
      NODE_NAME: `u7s-${FAKE_HOSTNAME}`,
      NODE_SUBNET: subnet,
      NODE_IP: subnet.replace(".0/24", ".100"),
      PORT_ETCD: "2379",
      PORT_KUBELET: "10250",
      PORT_FLANNEL: "8472",
      PORT_KUBE_APISERVER: "6443",
    });
  });

  test("--json holds the same values as the text (ports as numbers, empty as null), with no overrides, environment or flags", async () => {
    const cases: [string[], Record<string, string>][] = [
      [[], {}],
      [[], { NODE_NAME: "u7s-env", PORT_ETCD: "12379", CONTAINER_ENGINE: "/usr/bin/docker", HOST_IP_INTERFACE: "ib0" }],
      [["--node-subnet", "10.100.42.0/24", "--host-ip=203.0.113.4", "--port-flannel", "18472"], {}],
    ];
    for (const [flags, env] of cases) {
      const text = await runCli(["config", ...flags], { host: HOST, env });
      const json = await runCli(["config", "--json", ...flags], { host: HOST, env });
      expect([text.code, json.code]).toEqual([0, 0]);
      const fromText = Object.fromEntries(parseConfig(text.stdout).map(([k, v]) => [k, k.startsWith("PORT_") || k === "U7S_TENANT" ? Number(v) : v === "" ? null : v]));
      expect({ flags, env, json: JSON.parse(json.stdout) as unknown }).toEqual({ flags, env, json: fromText });
      expect(Object.keys(JSON.parse(json.stdout) as object)).toEqual(Object.keys(fromText));
    }
  });

  test("flags and environment reach the output", async () => {
    const r = await runCli(["config", "--node-name", "u7s-flag", "--port-etcd=12379"], {
      host: HOST,
      env: { NODE_NAME: "u7s-env", PORT_KUBELET: "11250", HOST_IP_INTERFACE: "ib0" },
    });
    expect(r.code).toBe(0);
    const c = Object.fromEntries(parseConfig(r.stdout));
    expect(c.NODE_NAME).toBe("u7s-flag");
    expect(c.PORT_ETCD).toBe("12379");
    expect(c.PORT_KUBELET).toBe("11250");
    expect(c.HOST_IP).toBe("198.51.100.7");
  });

  test("invalid settings: exit 2, one error line per problem, no engine command", async () => {
    const runner = new RecordingRunner().failAll();
    const r = await runCli(["config", "--port-etcd", "0", "--node-subnet", "10.96.1.0/24"], {
      host: HOST,
      runner,
      env: { HOST_IP: "1.2.3", NODE_NAME: "Bad_Name", PORT_KUBELET: "abc", CONTAINER_ENGINE: "podman;id" },
    });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const errors = errorLines(r.stderr);
    expect(errors).toHaveLength(6);
    for (const named of ['--port-etcd="0"', '--node-subnet="10.96.1.0/24"', 'HOST_IP="1.2.3"', 'NODE_NAME="Bad_Name"', 'PORT_KUBELET="abc"', 'CONTAINER_ENGINE="podman;id"']) {
      expect(errors.filter((e) => e.includes(named))).toHaveLength(1);
    }
    expect(runner.calls).toEqual([]);
  });

  test("no engine installed: still exits 0, with a warning on stderr", async () => {
    const r = await runCli(["config"], { host: { binaries: [] } });
    expect(r.code).toBe(0);
    expect(r.stderr).toStartWith("warning: no container engine found");
    expect(r.stderr).toContain("CONTAINER_ENGINE");
    expect(errorLines(r.stderr)).toEqual([]);
    const c = Object.fromEntries(parseConfig(r.stdout));
    expect(c.CONTAINER_ENGINE).toBe("");
    expect(c.CONTAINER_ENGINE_TYPE).toBe("");
    expect(c.NODE_NAME).toBe(`u7s-${FAKE_HOSTNAME}`);
    expect(r.runner.calls).toEqual([]);
  });

  test("no engine installed, --json: CONTAINER_ENGINE is null", async () => {
    const r = await runCli(["config", "--json"], { host: { binaries: [] } });
    expect(r.code).toBe(0);
    const obj = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(obj.CONTAINER_ENGINE).toBeNull();
    expect(obj.CONTAINER_ENGINE_TYPE).toBeNull();
  });

  test("the fake host answers every probe: config runs no command at all", async () => {
    const runner = new RecordingRunner().failAll();
    const r = await runCli(["config"], { host: HOST, runner });
    expect(r.code).toBe(0);
    expect(runner.calls).toEqual([]);
  });
});

describe("colour", () => {
  test("errors are plain when stderr is not a terminal", async () => {
    const r = await runCli(["upp"]);
    expect(r.stderr).not.toContain("\x1b[");
  });

  test("FORCE_COLOR colours them", async () => {
    const r = await runCli(["upp"], { env: { FORCE_COLOR: "1" } });
    expect(r.stderr).toContain("\x1b[");
  });

  test("NO_COLOR wins over a terminal", async () => {
    const r = await runCli(["upp"], { env: { NO_COLOR: "1", TERM: "xterm" }, tty: true });
    expect(r.stderr).not.toContain("\x1b[");
  });
});
