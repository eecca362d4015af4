// Builds the lobby playground (SPEC K-3) into one self-contained HTML file that the server embeds
// and serves at /playground: playground/index.html with playground/style.css inlined and
// playground/main.ts (with the client) bundled by esbuild into an inline module script. The output
// is committed (src/admin/playground.html, so building the server needs no Node) and CI checks
// that it is fresh:
//   node scripts/build-playground.mjs           write src/admin/playground.html (when it changed)
//   node scripts/build-playground.mjs --check   fail when the committed file is stale
import { build } from 'esbuild';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repo = resolve(pkg, '../..');
const source = join(pkg, 'playground');
const output = join(repo, 'src/admin/playground.html');
const check = process.argv.includes('--check');

const bundled = await build({
  entryPoints: [join(source, 'main.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  charset: 'utf8',
  legalComments: 'none',
  write: false,
  logLevel: 'warning',
});
const script = bundled.outputFiles[0].text;
const style = readFileSync(join(source, 'style.css'), 'utf8');
const template = readFileSync(join(source, 'index.html'), 'utf8');

const fail = (message) => {
  console.error(`build-playground: ${message}`);
  process.exit(1);
};
// The inline script must not end its own element, and only the <meta> tags may carry the slots the
// server fills in (it replaces the first occurrence of each).
if (/<\/script/i.test(script)) fail('the bundle contains "</script", which would end the inline script');
if (/%HUDDLE_/.test(script + style)) fail('the bundle or the style contains a %HUDDLE_ slot');

const inline = (text, tag, replacement) => {
  if (text.split(tag).length !== 2) fail(`playground/index.html must contain ${tag} exactly once`);
  return text.replace(tag, () => replacement);
};
let page = template;
page = inline(page, '<link rel="stylesheet" href="style.css">', `<style>\n${style}</style>`);
page = inline(page, '<script type="module" src="main.ts"></script>', `<script type="module">\n${script}</script>`);
page = inline(page, '<!doctype html>\n', '<!doctype html>\n<!-- Generated from clients/ts/playground/ by `npm run build:playground` (clients/ts); do not edit. -->\n');

const shown = relative(process.cwd(), output) || output;
const current = existsSync(output) ? readFileSync(output, 'utf8') : null;
if (check) {
  if (current !== page) fail(`${shown} is stale: run \`npm run build:playground\` in clients/ts and commit it`);
  console.log(`${shown} is fresh (${page.length} bytes)`);
} else if (current !== page) {
  writeFileSync(output, page);
  console.log(`wrote ${shown} (${page.length} bytes)`);
}
