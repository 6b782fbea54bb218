#!/usr/bin/env bun
import { defaultDeps, run } from "./lib/cli.ts";

process.exitCode = await run(process.argv.slice(2), defaultDeps());
