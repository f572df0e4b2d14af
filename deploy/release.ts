import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** `20250131T235959Z`: sorts by time, safe in paths and URLs. */
export const RELEASE_NAME = /^\d{8}T\d{6}Z$/;

export function releaseTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

export interface Manifest {
  name: 'osprey';
  timestamp: string;
  commit: string;
  /** The tree had uncommitted changes when it was built (a developer's build, not a CI one). */
  dirty: boolean;
  /** path → sha256 hex, or `symlink:<target>`; every file of the release except manifest.json. */
  files: Record<string, string>;
}

export interface BuildOptions {
  /** The repository to build. */
  root: string;
  /** Where `<timestamp>/` and `<timestamp>.tar.gz` go (default `<root>/releases`). */
  outDir?: string;
  timestamp?: string;
  tarball?: boolean;
  /**
   * Hard-link node_modules files instead of copying them (fast; for tests and local
   * fleets). The release then shares inodes with the installed tree: fine while nobody
   * edits node_modules in place, and `verifyRelease` would notice if someone did.
   */
  link?: boolean;
  /** Alters the tree before the manifest is written (tests use it to make a bad release). */
  patch?: (dir: string) => Promise<void> | void;
  log?: (line: string) => void;
}

export interface BuiltRelease {
  dir: string;
  timestamp: string;
  tarball?: string;
  manifest: Manifest;
}

/**
 * Builds a release: `tsc` emits ESM (one .js per .ts, the repo's own compiler, and a type
 * error stops the build), production node_modules are copied from the installed tree using
 * package-lock.json to tell production packages from dev ones (offline, and byte-identical
 * between builds), then the files services read at run time (migrations, web assets),
 * deploy/ assets and a manifest. Everything is built
 * beside the final directory and renamed into place, so a half-built release never exists
 * under its real name.
 */
export async function buildRelease(opts: BuildOptions): Promise<BuiltRelease> {
  const root = path.resolve(opts.root);
  const outDir = path.resolve(opts.outDir ?? path.join(root, 'releases'));
  const timestamp = opts.timestamp ?? releaseTimestamp(new Date());
  if (!RELEASE_NAME.test(timestamp)) throw new Error(`release timestamp "${timestamp}" is not like 20250131T235959Z`);
  const log = opts.log ?? (() => {});
  const finalDir = path.join(outDir, timestamp);
  if (await exists(finalDir)) throw new Error(`${finalDir} exists already: releases are never rebuilt in place`);
  // Same depth as the final directory, so source-map paths are the same in every build.
  const dir = path.join(outDir, `.building-${timestamp}`);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });

  try {
    log('compiling with tsc');
    await run(path.join(root, 'node_modules/.bin/tsc'), ['-p', path.join(root, 'tsconfig.release.json'), '--outDir', path.join(dir, 'dist')], {
      cwd: root,
      maxBuffer: 64 * 1024 * 1024,
    }).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`tsc failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
    // Files services read beside their code at run time (migrations, the web app's
    // assets): tsc emits only JavaScript, so they are copied to the same place under dist/.
    await copyRuntimeFiles(path.join(root, 'services'), path.join(dir, 'dist/services'));

    log('copying production node_modules');
    await copyProductionModules(root, dir, opts.link ?? false);
    for (const f of ['package.json', 'package-lock.json']) await fs.copyFile(path.join(root, f), path.join(dir, f));
    // deploy/ without its TypeScript (compiled into dist/deploy): unit files, examples.
    await fs.cp(path.join(root, 'deploy'), path.join(dir, 'deploy'), {
      recursive: true,
      filter: (src) => !src.endsWith('.ts'),
    });
    await opts.patch?.(dir);

    const { commit, dirty, epoch } = await gitState(root);
    const manifest: Manifest = { name: 'osprey', timestamp, commit, dirty, files: await hashTree(dir) };
    await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await fs.rename(dir, finalDir);

    let tarball: string | undefined;
    if (opts.tarball !== false) {
      log('writing the tarball');
      tarball = `${finalDir}.tar.gz`;
      await writeTarball(outDir, timestamp, tarball, epoch);
    }
    log(`built ${finalDir}`);
    return { dir: finalDir, timestamp, tarball, manifest };
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Copies every file under `src` that is not TypeScript to the same path under `dest`,
 * leaving out what tests use only (`*.test.*`, `testing/` directories).
 */
async function copyRuntimeFiles(src: string, dest: string): Promise<void> {
  for (const e of await fs.readdir(src, { withFileTypes: true })) {
    const from = path.join(src, e.name);
    const to = path.join(dest, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'testing' && e.name !== 'node_modules') await copyRuntimeFiles(from, to);
    } else if (e.isFile() && !/\.tsx?$/.test(e.name) && !/\.test\./.test(e.name)) {
      await fs.mkdir(dest, { recursive: true });
      await fs.copyFile(from, to);
    }
  }
}

/**
 * Copies every top-level package that package-lock.json does not mark dev-only and that is
 * installed here, with its nested node_modules (a package nested under a production
 * package is one of its dependencies), without .bin directories.
 */
async function copyProductionModules(root: string, dir: string, link: boolean): Promise<void> {
  const lock = JSON.parse(await fs.readFile(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; link?: boolean }>;
  };
  const modules = await fs.realpath(path.join(root, 'node_modules'));
  const wanted = Object.entries(lock.packages)
    .filter(([key, meta]) => key.startsWith('node_modules/') && !key.slice(13).includes('/node_modules/') && !meta.dev && !meta.link)
    .map(([key]) => key.slice('node_modules/'.length))
    .sort();
  for (const rel of wanted) {
    const src = path.join(modules, rel);
    // Optional packages for other platforms (esbuild, resvg) are in the lock but not installed.
    if (!(await exists(src))) continue;
    await copyTree(src, path.join(dir, 'node_modules', rel), link);
  }
}

async function copyTree(src: string, dest: string, link: boolean): Promise<void> {
  await fs.mkdir(dest, { recursive: true });
  for (const e of await fs.readdir(src, { withFileTypes: true })) {
    if (e.name === '.bin') continue;
    const from = path.join(src, e.name);
    const to = path.join(dest, e.name);
    if (e.isDirectory()) await copyTree(from, to, link);
    else if (e.isSymbolicLink()) await fs.symlink(await fs.readlink(from), to);
    else if (e.isFile()) {
      if (link) {
        try {
          await fs.link(from, to);
          continue;
        } catch (err) {
          if ((err as { code?: string }).code !== 'EXDEV') throw err;
        }
      }
      await fs.copyFile(from, to);
    }
  }
}

async function gitState(root: string): Promise<{ commit: string; dirty: boolean; epoch: number }> {
  try {
    const commit = (await run('git', ['rev-parse', 'HEAD'], { cwd: root })).stdout.trim();
    const epoch = Number((await run('git', ['log', '-1', '--format=%ct'], { cwd: root })).stdout.trim());
    const status = (await run('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root })).stdout.trim();
    return { commit, dirty: status.length > 0, epoch };
  } catch {
    return { commit: 'unknown', dirty: true, epoch: 0 };
  }
}

/** path → sha256 for every file under dir (sorted; manifest.json excluded). */
export async function hashTree(dir: string): Promise<Record<string, string>> {
  const entries: Array<[string, 'file' | 'link']> = [];
  const walk = async (rel: string): Promise<void> => {
    const list = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of list) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (r === 'manifest.json') continue;
      if (e.isSymbolicLink()) entries.push([r, 'link']);
      else if (e.isDirectory()) await walk(r);
      else if (e.isFile()) entries.push([r, 'file']);
    }
  };
  await walk('');
  const sums = new Array<string>(entries.length);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const i = next++;
      const [r, kind] = entries[i];
      const full = path.join(dir, r);
      sums[i] = kind === 'link' ? `symlink:${await fs.readlink(full)}` : await sha256File(full);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const out: Record<string, string> = {};
  entries.forEach(([r], i) => (out[r] = sums[i]));
  return out;
}

async function sha256File(file: string): Promise<string> {
  const { size } = await fs.stat(file);
  if (size < 8 * 1024 * 1024) return createHash('sha256').update(await fs.readFile(file)).digest('hex');
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => h.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** A tarball that depends only on the tree: sorted names, the commit's time, no owners, gzip -n. */
async function writeTarball(outDir: string, name: string, file: string, epoch: number): Promise<void> {
  const tmp = `${file}.partial`;
  await run(
    'sh',
    [
      '-c',
      'tar --sort=name --mtime="@$1" --owner=0 --group=0 --numeric-owner --mode=go-w -C "$2" -cf - "$3" | gzip -n > "$4"',
      'tar',
      String(epoch),
      outDir,
      name,
      tmp,
    ],
    { maxBuffer: 1024 * 1024 },
  );
  await fs.rename(tmp, file);
}

export async function readManifest(dir: string): Promise<Manifest> {
  return JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
}

/** Names every file that is missing, extra or changed against the manifest ([] = intact). */
export async function verifyRelease(dir: string): Promise<string[]> {
  const manifest = await readManifest(dir);
  const actual = await hashTree(dir);
  const problems: string[] = [];
  for (const [p, sum] of Object.entries(manifest.files)) {
    if (!(p in actual)) problems.push(`missing ${p}`);
    else if (actual[p] !== sum) problems.push(`changed ${p}`);
  }
  for (const p of Object.keys(actual)) if (!(p in manifest.files)) problems.push(`extra ${p}`);
  return problems;
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}
