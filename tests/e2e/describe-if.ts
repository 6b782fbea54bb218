// describeIf: a suite that needs a test host made by tests/setup-*.sh. Outside CI, without that host it is
// skipped, saying why (a developer may set up only some hosts). Under CI (CI=true, as .ci/run runs) .ci/run
// has set every host up, so a missing one is a failure, not a skip: a suite skipped in CI proves nothing.
import { describe, test } from "bun:test";

/** Suite is what describeIf returns: describe's plain form. */
export type Suite = (label: string, fn: () => void) => void;

/** describeIf is describe when ready; else describe.skip with why (outside CI), or one failing test naming why (CI=true). */
export function describeIf(ready: unknown, why: string, env: Readonly<Record<string, string | undefined>> = process.env): Suite {
  if (ready) return describe;
  if (env.CI !== "true") {
    console.warn(`skipped: ${why}`);
    return describe.skip;
  }
  return (label, _fn) =>
    describe(label, () => {
      test(`its test host is there (CI=true: a missing host fails; skipped, this suite would prove nothing)`, () => {
        throw new Error(why);
      });
    });
}
