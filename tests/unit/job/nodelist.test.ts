import { describe, expect, test } from "bun:test";
import { controlPlaneHost, expandHostlist, MAX_HOSTS } from "../../../lib/job/nodelist.ts";
import { UsageError } from "../../../lib/errors.ts";

describe("expandHostlist", () => {
  // Expected values as `scontrol show hostnames LIST` prints them (Slurm's hostlist.c) and `flux hostlist` (RFC 29).
  test.each([
    ["node[01-04,07],login1", ["node01", "node02", "node03", "node04", "node07", "login1"]],
    ["n[8-10]", ["n8", "n9", "n10"]],
    ["n[08-10]", ["n08", "n09", "n10"]],
    ["n[098-101]", ["n098", "n099", "n100", "n101"]],
    ["n[0-2]", ["n0", "n1", "n2"]],
    ["host-e,host-f", ["host-e", "host-f"]],
    ["host-e", ["host-e"]],
    ["rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]],
    ["gpu[1-2]-ib", ["gpu1-ib", "gpu2-ib"]],
    ["n[3],n[1-2]", ["n3", "n1", "n2"]],
    ["n[1-2],n[2-3]", ["n1", "n2", "n3"]],
    [" a , b ", ["a", "b"]],
    ["", []],
  ])("%p", (list, want) => {
    expect(expandHostlist(list)).toEqual(want);
  });

  test.each([
    ["n[1-", "a '[' without its ']'"],
    ["n]1[", "a ']' without its '['"],
    ["n[[1]]", "nested brackets"],
    ["n[3-1]", "range 3-1 runs backwards"],
    ["n[a-b]", '"a-b" is not a number or a range like 01-04'],
    ["n[1,,2]", '"" is not a number or a range like 01-04'],
    ["a,,b", "an empty host name"],
    ["n[1-2] x", "has a space in a host name"],
    [`n[1-${MAX_HOSTS + 1}]`, `has more than ${MAX_HOSTS} hosts`],
    [`a[1-1000]b[1-1000]`, `more than ${MAX_HOSTS} hosts`],
  ])("%p is bad input: %s", (list, why) => {
    let err: unknown;
    try {
      expandHostlist(list);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as UsageError).message).toStartWith(`node list ${JSON.stringify(list)}: `);
    expect((err as UsageError).message).toContain(why);
    expect((err as UsageError).hint).toContain("node[01-04,07],login1");
  });
});

describe("controlPlaneHost", () => {
  test("--control-plane wins over the job's node list", () => {
    expect(controlPlaneHost({ SLURM_JOB_NODELIST: "n[1-4]" }, "n3")).toBe("n3");
  });
  test.each([
    [{ SLURM_JOB_NODELIST: "n[02-04]", SLURM_NODELIST: "x", FLUX_JOB_NODELIST: "y" }, "n02"],
    [{ SLURM_NODELIST: "old[7-8]", FLUX_JOB_NODELIST: "y" }, "old7"],
    [{ FLUX_JOB_NODELIST: "fluke[100-101]" }, "fluke100"],
    [{ SLURM_JOB_NODELIST: "", FLUX_JOB_NODELIST: "f1" }, "f1"],
    [{}, undefined],
  ])("%p: %p", (env, want) => {
    expect(controlPlaneHost(env, undefined)).toBe(want);
    expect(controlPlaneHost(env, "")).toBe(want);
  });
  test("a bad node list names its variable and the way around it", () => {
    let err: unknown;
    try {
      controlPlaneHost({ SLURM_JOB_NODELIST: "n[1-" }, undefined);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toStartWith('SLURM_JOB_NODELIST: node list "n[1-": ');
    expect((err as UsageError).hint).toBe("pass --control-plane HOST");
  });
});
