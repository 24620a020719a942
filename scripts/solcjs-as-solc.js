#!/usr/bin/env node
// Makes npm's `solc` (the Emscripten build of the Solidity compiler) answer
// like a native solc binary, so that `forge build --use <this> --offline`
// compiles without downloading a compiler. forge asks for `--version` and
// then sends a standard JSON input on stdin with `--standard-json`.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const args = process.argv.slice(2);
if (args.includes("--version")) {
  const version = solc.version().replace(/\.Emscripten\.clang$/, "");
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${version}.Linux.g++\n`);
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("this wrapper only speaks --version and --standard-json\n");
  process.exit(2);
}

// Imports that forge did not inline are read below the base and include
// paths it names, as native solc would.
const roots = [process.cwd()];
for (let i = 0; i < args.length; i++) {
  if ((args[i] === "--base-path" || args[i] === "--include-path") && args[i + 1]) {
    roots.push(path.resolve(args[i + 1]));
  }
}
function findImports(name) {
  for (const root of roots) {
    const file = path.resolve(root, name);
    if (fs.existsSync(file)) {
      return { contents: fs.readFileSync(file, "utf8") };
    }
  }
  return { error: `file not found: ${name}` };
}

const input = fs.readFileSync(0, "utf8");
process.stdout.write(solc.compile(input, { import: findImports }));
