// Copies the vite build (dist/) into crates/ui/assets/, which the hypnos-ui crate embeds at compile
// time. Old files are removed first so stale hashed bundles never end up in the binary.
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ui = dirname(dirname(fileURLToPath(import.meta.url)));
const dist = join(ui, 'dist');
const assets = join(ui, '..', 'crates', 'ui', 'assets');

rmSync(assets, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
cpSync(dist, assets, { recursive: true });

const list = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? list(p) : [p];
  });
// Pre-compressed copies of the text assets: the server sends them to browsers that accept gzip.
for (const file of list(assets)) {
  if (/\.(js|css|html|svg)$/.test(file)) {
    writeFileSync(`${file}.gz`, gzipSync(readFileSync(file), { level: 9 }));
  }
}
let total = 0;
for (const file of list(assets)) {
  const size = statSync(file).size;
  total += size;
  console.log(`${relative(assets, file).padEnd(40)} ${String(size).padStart(8)} bytes`);
}
console.log(`copied into ${relative(process.cwd(), assets)}: ${total} bytes`);
