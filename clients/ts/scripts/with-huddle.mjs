// Runs a command (the Node tests) with HUDDLE_BIN pointing at the huddle binary under test: the
// one given in HUDDLE_BIN, else the workspace's release build, built here first (a no-op when it is
// fresh), so `npm test` alone tests exactly what users run.
//   node scripts/with-huddle.mjs node --test build/test/
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
// npm runs scripts in the package folder; a relative HUDDLE_BIN means the folder npm was run from.
let bin = process.env.HUDDLE_BIN ? resolve(process.env.INIT_CWD ?? process.cwd(), process.env.HUDDLE_BIN) : '';
if (!bin) {
  console.error('building the huddle binary (cargo build --release --bin huddle); set HUDDLE_BIN to skip');
  execFileSync('cargo', ['build', '--release', '--bin', 'huddle'], { cwd: repo, stdio: 'inherit' });
  const metadata = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: repo, encoding: 'utf8', maxBuffer: 64 << 20 }));
  bin = join(metadata.target_directory, 'release', 'huddle');
}
if (!existsSync(bin)) {
  console.error(`HUDDLE_BIN=${bin} does not exist`);
  process.exit(2);
}
const [command, ...args] = process.argv.slice(2);
const run = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, HUDDLE_BIN: bin } });
process.exit(run.status ?? 1);
