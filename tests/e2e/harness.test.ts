import { describe, expect, test } from "bun:test";
import { TEST_ENGINES, describeResult, loadEnginesEnv, runU7s } from "./harness.ts";

describe("e2e harness", () => {
  test("engines.env names both engines", () => {
    expect(loadEnginesEnv().engines).toEqual(["docker", "podman"]);
  });

  test.each(TEST_ENGINES)("u7s version runs as the test user (%s)", async (engine) => {
    const r = await runU7s(engine, ["version"]);
    if (r.exitCode !== 0) throw new Error(describeResult(["u7s", "version"], r));
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("u7s");
  });
});
