// `npm run bench`: the side-by-side table of GitRepo Job cleanup against its peers, then the OCI
// phase against a real registry. Each is also runnable alone (`node bench/compare.ts --help`).
// Benchmarks print numbers; they assert nothing and are not part of `npm test`.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
let failed = 0;
for (const file of ['compare.ts', 'oci.ts']) {
  console.log(`\n== bench/${file}`);
  const result = spawnSync(process.execPath, [join(here, file)], { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
