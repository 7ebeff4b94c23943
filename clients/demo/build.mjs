// Builds dist/ (index.html, app.js, app.css), which the server embeds and serves at `/`,
// `/demo/app.js` and `/demo/app.css`. The output depends only on the sources: no timestamps, no
// hashes, no source map, no legal comments, so `npm run check-dist` can compare it with git.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
await mkdir(`${root}dist`, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: ["src/main.ts"],
  outfile: "dist/app.js",
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  charset: "utf8",
  legalComments: "none",
  sourcemap: false,
  minify: false,
  logLevel: "warning",
});
await copyFile(`${root}index.html`, `${root}dist/index.html`);
await copyFile(`${root}app.css`, `${root}dist/app.css`);
