#!/usr/bin/env node
// The snakepit_trio worker for Node.js: serves a JavaScript adapter to a snakepit_trio host.
// Flags as `python -m snakepit_trio.worker` (see src/args.mjs).

// First of all, before any module loads: with no SIGUSR1 handler, Node.js opens its
// inspector (a debugger port anyone on the machine could attach to) on SIGUSR1.
process.on("SIGUSR1", () => {});

const { main } = await import("../src/main.mjs");
await main(process.argv.slice(2));
