// Bundles each widget entry (js/<name>.js) into codeur_widgets/static/<name>.js as one
// self-contained ES module (anywidget loads it as `_esm`; cytoscape is bundled, never a CDN).
// Usage: `npm run build` (minified) or `node build.mjs --dev` (readable, with inline sourcemaps).
import { readdirSync, mkdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(here, "..", "codeur_widgets", "static");
const dev = process.argv.includes("--dev");

// Every .js file at the top of js/ is a widget entry; helpers live in js/lib/.
const entryPoints = readdirSync(here)
  .filter((f) => f.endsWith(".js"))
  .sort()
  .map((f) => join(here, f));

mkdirSync(outdir, { recursive: true });
await esbuild.build({
  entryPoints,
  outdir,
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  legalComments: "none",
  logLevel: "warning",
  // Let esbuild drop development-only branches in dependencies.
  define: { "process.env.NODE_ENV": dev ? '"development"' : '"production"' },
});

for (const entry of entryPoints) {
  const name = entry.slice(here.length + 1);
  const size = statSync(join(outdir, name)).size;
  console.log(`built static/${name} ${(size / 1024).toFixed(1)} KiB`);
}
