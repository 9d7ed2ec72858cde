// Lint: every .js file must parse (node --check) and must not leave a console.log behind in server.js.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const files = ['server.js', ...readdirSync('scripts').map((f) => `scripts/${f}`)].filter((f) => f.endsWith('.js'));
let failed = false;
for (const file of files) {
  try {
    execFileSync(process.execPath, ['--check', file], { stdio: 'pipe' });
  } catch (err) {
    failed = true;
    process.stderr.write(`${file}: ${String(err.stderr ?? err.message).trim()}\n`);
  }
}
if (/console\.log\(/.test(readFileSync('server.js', 'utf8'))) {
  failed = true;
  process.stderr.write('server.js: remove console.log (write to process.stdout instead)\n');
}
process.stdout.write(`lint: ${files.length} files checked\n`);
process.exit(failed ? 1 : 0);
