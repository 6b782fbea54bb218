import { describe, expect, test } from "bun:test";
import { U7sError } from "../../../lib/errors.ts";
import { statePaths } from "../../../lib/state/paths.ts";

describe("statePaths", () => {
  test("the XDG defaults under HOME, per host and per node", () => {
    expect(statePaths({ HOME: "/home/u" }, "login1", "u7s-node-a")).toEqual({
      configDir: "/home/u/.config/u7s/login1/u7s-node-a",
      stateDir: "/home/u/.local/state/u7s/login1/u7s-node-a",
      kubeconfig: "/home/u/.config/u7s/login1/u7s-node-a/kubeconfig",
      joinFile: "/home/u/.config/u7s/login1/u7s-node-a/join.json",
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
