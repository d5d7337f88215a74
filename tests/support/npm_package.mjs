// npm_package.mjs: loads an ES module package (or one of its subpaths, `pkg/sub`) from the npm
// test peers' node_modules directory, for the test peer scripts. The packages live outside the
// repository (scripts/install-test-packages), where bare specifiers do not resolve, and ESM
// ignores NODE_PATH: the package's "exports" map is read here instead (its import condition).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// `modules`: the node_modules directory.
export async function loadPackage(modules, spec) {
  const parts = spec.split('/');
  const name = parts.slice(0, spec.startsWith('@') ? 2 : 1).join('/');
  const sub = parts.slice(name.split('/').length).join('/');
  const manifest = JSON.parse(readFileSync(join(modules, name, 'package.json'), 'utf8'));
  let entry = manifest.exports[sub ? `./${sub}` : '.'];
  while (typeof entry === 'object') entry = entry.import ?? entry.default;
  return import(pathToFileURL(join(modules, name, entry)).href);
}

// The node_modules directory a peer server is given: $TETHER_NPM_ROOT/node_modules, else the
// first NODE_PATH entry.
export function modulesFromEnvironment() {
  const root = process.env.TETHER_NPM_ROOT;
  const modules = root ? join(root, 'node_modules') : process.env.NODE_PATH?.split(':')[0];
  if (!modules) throw new Error('set TETHER_NPM_ROOT (the dir holding node_modules/) or NODE_PATH');
  return modules;
}
