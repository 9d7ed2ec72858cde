// Build: copy what the service needs at run time into dist/ (the image context).
import { cpSync, mkdirSync, rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist', { recursive: true });
for (const file of ['server.js', 'package.json']) cpSync(file, `dist/${file}`);
process.stdout.write('build: dist/ ready\n');
