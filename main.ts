#!/usr/bin/env bun
import { defaultDeps, run } from "./lib/cli.ts";

// No top-level await: compiled with --bytecode, the entry is CommonJS.
void run(process.argv.slice(2), defaultDeps()).then((code) => {
  process.exitCode = code;
});
