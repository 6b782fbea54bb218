import { describe, expect, test } from "bun:test";
import { U7sError } from "../../../lib/errors.ts";
import { hostConfigRoot, hostDataPaths, isHostSegment, statePaths } from "../../../lib/state/paths.ts";

describe("statePaths", () => {
  test("the XDG defaults under HOME, per host and per node", () => {
    expect(statePaths({ HOME: "/home/u" }, "login1", "u7s-node-a")).toEqual({
      configDir: "/home/u/.config/u7s/login1/u7s-node-a",
      stateDir: "/home/u/.local/state/u7s/login1/u7s-node-a",
      kubeconfig: "/home/u/.config/u7s/login1/u7s-node-a/kubeconfig",
      joinFile: "/home/u/.config/u7s/login1/u7s-node-a/join.json",
      upstreamJoinFile: "/home/u/.config/u7s/login1/u7s-node-a/join-command",
      lock: "/home/u/.local/state/u7s/login1/u7s-node-a/lock",
    });
  });

  test("XDG_CONFIG_HOME and XDG_STATE_HOME win when absolute; HOME is then not needed", () => {
    const p = statePaths({ XDG_CONFIG_HOME: "/cfg", XDG_STATE_HOME: "/st" }, "h", "n");
    expect([p.configDir, p.stateDir, p.kubeconfig, p.lock]).toEqual(["/cfg/u7s/h/n", "/st/u7s/h/n", "/cfg/u7s/h/n/kubeconfig", "/st/u7s/h/n/lock"]);
  });

  test("relative or empty XDG variables are ignored, as the spec says", () => {
    const p = statePaths({ HOME: "/home/u", XDG_CONFIG_HOME: "cfg", XDG_STATE_HOME: "" }, "h", "n");
    expect([p.configDir, p.stateDir]).toEqual(["/home/u/.config/u7s/h/n", "/home/u/.local/state/u7s/h/n"]);
  });

  test("two hosts sharing a home, or two nodes on one host, never share a file", () => {
    const files = (host: string, node: string) => Object.values(statePaths({ HOME: "/home/u" }, host, node));
    const all = [...files("a", "n"), ...files("b", "n"), ...files("a", "m")];
    expect(new Set(all).size).toBe(all.length);
  });

  test("without HOME (and without the XDG variable): a U7sError naming both, with a hint", () => {
    for (const env of [{}, { HOME: "" }, { HOME: "", XDG_CONFIG_HOME: "/cfg" }]) {
      let err: unknown;
      try {
        statePaths(env, "h", "n");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(U7sError);
      expect((err as U7sError).message).toMatch(/^neither XDG_(CONFIG|STATE)_HOME nor HOME is set/);
      expect((err as U7sError).hint).toContain("HOME");
    }
  });
});

describe("hostDataPaths, hostConfigRoot", () => {
  test("XDG_DATA_HOME (default ~/.local/share)/u7s/HOST holds the loaded images; XDG_CONFIG_HOME/u7s/HOST every node's config", () => {
    expect(hostDataPaths({ HOME: "/home/u" }, "login1")).toEqual({
      dataDir: "/home/u/.local/share/u7s/login1",
      imagesDir: "/home/u/.local/share/u7s/login1/images",
      imagesRecord: "/home/u/.local/share/u7s/login1/images/images.json",
    });
    expect(hostDataPaths({ HOME: "/home/u", XDG_DATA_HOME: "/data" }, "h").imagesDir).toBe("/data/u7s/h/images");
    expect(hostConfigRoot({ HOME: "/home/u" }, "login1")).toBe("/home/u/.config/u7s/login1");
    expect(hostConfigRoot({ HOME: "/home/u", XDG_CONFIG_HOME: "/cfg" }, "login1")).toBe("/cfg/u7s/login1");
    expect(hostConfigRoot({ HOME: "/home/u" }, "login1")).toBe(statePaths({ HOME: "/home/u" }, "login1", "n").configDir.replace(/\/n$/, ""));
  });

  test("two hosts sharing a home never share a data file", () => {
    const a = Object.values(hostDataPaths({ HOME: "/home/u" }, "a"));
    const b = Object.values(hostDataPaths({ HOME: "/home/u" }, "b"));
    expect(a.filter((p) => b.includes(p))).toEqual([]);
  });

  test("a host name naming a directory: no slash, no dot or dot-dot, not empty", () => {
    expect(["login1", "gpu-01.cluster.example", "a_b"].every(isHostSegment)).toBe(true);
    expect(["", ".", "..", "a/b", "../x", "a b"].some(isHostSegment)).toBe(false);
  });
});
