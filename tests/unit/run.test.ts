// tests/run.ts's own logic: which files are in no group, and bun test's summary read back.
import { describe, expect, test } from "bun:test";
import { summaryOf, unplaced } from "../run.ts";

describe("unplaced", () => {
  test("a file on disk in no group is missing; a group entry with no file is unknown", () => {
    expect(unplaced(["a.test.ts", "b.test.ts"], ["a.test.ts", "c.test.ts"])).toEqual({ missing: ["b.test.ts"], unknown: ["c.test.ts"] });
    expect(unplaced(["a.test.ts"], ["a.test.ts"])).toEqual({ missing: [], unknown: [] });
  });
});

describe("summaryOf", () => {
  test("reads bun's last summary counts, colours stripped", () => {
    const out = "(pass) x\n 3 pass\n\x1b[33m 2 skip\x1b[0m\n 1 fail\n 12 expect() calls\nRan 6 tests across 1 file.\n";
    expect(summaryOf(out)).toEqual({ pass: 3, skip: 2, fail: 1 });
  });
  test("no skip line is 0 skipped; only the summary's lines count, not a test named like one", () => {
    expect(summaryOf("(pass) 5 pass of a kind\n 7 pass\n 0 fail\n")).toEqual({ pass: 7, skip: 0, fail: 0 });
  });
  test("a run that printed no summary (a crash) is undefined", () => {
    expect(summaryOf("error: something\n")).toBeUndefined();
  });
});
