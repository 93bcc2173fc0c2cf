#!/usr/bin/env node
// Entry point: `fleet-cleanup` (dist/main.js) or `node src/main.ts`. It imports nothing
// statically: on an older Node.js, undici and client-node crash while loading (undici 8 reads
// APIs Node 20 lacks), so the version is checked before anything else is loaded.
const MINIMUM_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);
if (!(major >= MINIMUM_MAJOR)) {
  process.stderr.write(`fleet-cleanup: error: Node.js ${MINIMUM_MAJOR} or newer is required; this is Node.js ${process.version} (${process.execPath})\n`);
  process.exit(2);
}
await import('./start.ts');
