// Copy the front-end packages installed from the npm registry into the static folder the app
// serves. The copies are build output (git-ignored), never committed.
import { cpSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "src/connectx/web/static/vendor");
const files = {
  "htmx.min.js": "node_modules/htmx.org/dist/htmx.min.js",
  "alpine.min.js": "node_modules/@alpinejs/csp/dist/cdn.min.js",
  "pico.min.css": "node_modules/@picocss/pico/css/pico.min.css",
  "swagger-ui-bundle.js": "node_modules/swagger-ui-dist/swagger-ui-bundle.js",
  "swagger-ui.css": "node_modules/swagger-ui-dist/swagger-ui.css",
};
mkdirSync(out, { recursive: true });
for (const [name, source] of Object.entries(files)) {
  cpSync(join(root, source), join(out, name));
}
console.log(`front-end assets copied to ${out}`);
