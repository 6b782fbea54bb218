// tests/e2e/describe-if.ts: a suite whose test host is missing is skipped outside CI and fails under CI.
import { describe, expect, test } from "bun:test";
import { describeIf } from "../e2e/describe-if.ts";

test("a ready host runs the suite; outside CI a missing one skips it; under CI a missing one is a suite of its own that fails", () => {
  expect(describeIf(true, "x", {})).toBe(describe);
  expect(describeIf(undefined, "x", { CI: "false" })).toBe(describe.skip);
  const ci = describeIf("", "host E is not set up", { CI: "true" });
  expect(ci).not.toBe(describe);
  expect(ci).not.toBe(describe.skip);
});
