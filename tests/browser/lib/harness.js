// Test harness: starts a `dangwu serve --demo` on a free loopback port with a
// fresh data directory, and launches Debian's Chromium through
// playwright-core (which never downloads a browser of its own).

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');

/** Password of every demo account, printed by `dangwu serve --demo`. */
export const DEMO_PASSWORD = process.env.DANGWU_DEMO_PASSWORD || 'Dangwu@2026';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** Maximum wait for the server to respond on /healthz after start. */
const STARTUP_TIMEOUT_MS = 60_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForHealth(url, child, output) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`dangwu serve exited with code ${child.exitCode}:\n${output.join('')}`);
    }
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`dangwu serve did not respond on ${url}/healthz within ${STARTUP_TIMEOUT_MS} ms:\n${output.join('')}`);
}

/**
 * Starts a demo server; returns `{ url, output, kill, stop }`. `args(url)` returns more
 * flags for `dangwu serve`, given the server's own URL.
 */
export async function startServer({ args = () => [] } = {}) {
  const binary = path.resolve(repoRoot, process.env.DANGWU_BIN || 'target/debug/dangwu');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dangwu-browser-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const flags = ['serve', '--demo', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn', ...args(url)];
  const child = spawn(binary, flags, {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = [];
  child.stdout.on('data', (chunk) => output.push(chunk.toString()));
  child.stderr.on('data', (chunk) => output.push(chunk.toString()));
  try {
    await waitForHealth(url, child, output);
  } catch (error) {
    child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  // A process ended by a signal keeps `exitCode` null, so both are checked
  // before waiting for an `exit` event that has already fired.
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    url,
    output,
    /** Ends the process at once with SIGKILL, as a crash would, and waits for it. */
    async kill() {
      if (!running()) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (running()) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Chromium flags for pages that use WebRTC on loopback: fake camera and
 * microphone without a permission prompt, loopback ICE candidates (Chromium
 * gathers none without the flag) and playback without a user gesture.
 */
export const MEDIA_ARGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
];

/**
 * Launches headless Chromium with a fresh profile directory and returns
 * `{ context, close }`. Playwright takes the profile as the persistent
 * context's directory and passes it as --user-data-dir itself. `args` adds
 * flags, such as MEDIA_ARGS.
 */
export async function launchBrowser({ viewport = { width: 1366, height: 768 }, args = [] } = {}) {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'dangwu-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    locale: 'zh-CN',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...args,
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a server and a browser page (1366x768 unless `viewport` is given) for
 * one test, and registers their cleanup with the test context.
 */
export async function setup(t, { viewport } = {}) {
  const server = await startServer();
  t.after(() => server.stop());
  const chrome = await launchBrowser({ viewport });
  t.after(() => chrome.close());
  const page = chrome.context.pages()[0] || (await chrome.context.newPage());
  page.setDefaultTimeout(15_000);
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  return { server, page, context: chrome.context, pageErrors };
}

/** Logs in through the login form and waits for the shell. */
export async function login(page, url, username, password = DEMO_PASSWORD) {
  await page.goto(`${url}/login`);
  await page.getByLabel(/用户名|Username/).fill(username);
  await page.getByLabel(/^(密码|Password)$/).fill(password);
  await page.getByRole('button', { name: /^(登录|Log in)$/ }).click();
}

/** Calls the API as a given account from Node, outside the browser. */
export async function apiSession(url, username, password = DEMO_PASSWORD) {
  const response = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!response.ok) throw new Error(`login as ${username} failed: HTTP ${response.status} ${await response.text()}`);
  const cookies = response.headers.getSetCookie().map((cookie) => cookie.split(';')[0]).join('; ');
  const { csrf_token: csrf } = await response.json();
  return async (method, apiPath, body) => {
    const reply = await fetch(`${url}${apiPath}`, {
      method,
      headers: { Cookie: cookies, 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await reply.text();
    if (!reply.ok) throw new Error(`${method} ${apiPath} failed: HTTP ${reply.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}
