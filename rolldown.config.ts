// `npm run build`: src/ bundled with rolldown into dist/, the package's bin and the image's
// program. Bundled rather than compiled file by file, for start-up: @kubernetes/client-node as
// published loads every generated API class and auth plugin (its config.js pulls them in);
// tree-shaken to what the job uses, `node dist/main.js --help` peaks at 94 MiB RSS instead of
// 130 MiB and takes 0.13 s of CPU instead of 0.37 s; a run at 100k Jobs peaks at 141 MiB
// instead of 157 MiB (Node 24; README, "The build").
//
// - dist/main.js is src/main.ts as written: no static import, the Node.js version check, then
//   `import('./lib/start.js')`, the chunk with everything else.
// - That chunk sits one directory below dist/, as dist/cli/version.js did: src/cli/version.ts
//   reads `../../package.json` relative to its own file at run time.
// - pino-pretty stays external: src/log.ts requires it at run time, only for `--log-format text`,
//   from the production node_modules (the image and the npx install have them). Everything else
//   is inlined.
// - Not minified: an "internal error" stack names the functions and lines as written (keepNames
//   keeps class and function names the bundle renamed). Minifying saved 5 MiB of the 94.
//   Source maps without sources (`node --enable-source-maps` maps a stack to src/).
// - Only types are stripped here; type checking is `npm run typecheck` (tsc).
import { defineConfig } from 'rolldown';

export default defineConfig({
  input: { main: 'src/main.ts' },
  platform: 'node',
  external: ['pino-pretty'],
  tsconfig: 'tsconfig.json',
  output: {
    dir: 'dist',
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: 'lib/[name].js',
    cleanDir: true,
    keepNames: true,
    sourcemap: true,
    sourcemapExcludeSources: true,
  },
});
