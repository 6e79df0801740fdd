// Builds the web console's assets into services/pynomaly/web/console/static/ (git-ignored outputs; `make setup`
// runs this after `npm ci`): the vendored scripts, copied from node_modules as published (no bundler), and
// console.css, Tailwind's CLI over src/console.css (class names from the console's templates), minified.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const staticDir = join(here, "..", "pynomaly", "web", "console", "static");
const vendor = join(staticDir, "vendor");

// Each vendored file and where its package publishes it (UMD builds: globals htmx, vega, vegaLite, vegaEmbed).
const VENDORED = {
  "htmx.min.js": "htmx.org/dist/htmx.min.js",
  "vega.min.js": "vega/build/vega.min.js",
  "vega-lite.min.js": "vega-lite/build/vega-lite.min.js",
  "vega-embed.min.js": "vega-embed/build/vega-embed.min.js",
};

rmSync(vendor, { recursive: true, force: true }); // nothing stale survives a version change
mkdirSync(vendor, { recursive: true });
for (const [name, source] of Object.entries(VENDORED)) {
  copyFileSync(join(modules, source), join(vendor, name));
}

const tailwind = spawnSync(
  process.execPath,
  [join(modules, "@tailwindcss", "cli", "dist", "index.mjs"), "--input", join(here, "src", "console.css"),
    "--output", join(staticDir, "console.css"), "--minify"],
  { cwd: here, stdio: ["ignore", "inherit", "inherit"] },
);
if (tailwind.error) throw tailwind.error;
if (tailwind.status !== 0) {
  console.error(`tailwindcss failed (exit status ${tailwind.status ?? tailwind.signal})`);
  process.exit(1);
}
console.log(`console assets: ${Object.keys(VENDORED).join(", ")} and console.css in ${staticDir}`);
