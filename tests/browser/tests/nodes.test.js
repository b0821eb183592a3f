// Two nodes over one PostgreSQL schema and one NATS server, in headless
// Chromium with real WebRTC. The host enters the meeting room on node B. A
// second person opens the meeting through node A. That room page requests
// the node hosting the meeting and moves its hub socket to node B before
// joining, so the two people share one media engine and see each other.
//
// Needs PostgreSQL on 127.0.0.1:5432 (database `test`, trust
// authentication, or the URL in DANGWU_TEST_PG) and NATS with JetStream on
// 127.0.0.1:4222 (or DANGWU_TEST_NATS).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MEDIA_ARGS, apiSession, launchBrowser, login, startServer } from '../lib/harness.js';

const MEDIA_TIMEOUT_MS = 90_000;
const PG_URL = process.env.DANGWU_TEST_PG || 'postgres://postgres@127.0.0.1:5432/test';
const NATS = new URL(process.env.DANGWU_TEST_NATS || 'nats://127.0.0.1:4222');

function psql(sql) {
  const env = { ...process.env, PGOPTIONS: '--client-min-messages=warning' };
  execFileSync('psql', [PG_URL, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { env });
}

/** Deletes JetStream streams through the NATS protocol; returns the replies. */
function deleteStreams(names) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(NATS.port || 4222), NATS.hostname);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`NATS did not confirm deleting ${names.join(', ')}: ${text}`));
    }, 10_000);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      text += chunk.toString();
      if ((text.match(/stream_delete_response/g) || []).length === names.length) {
        clearTimeout(timer);
        socket.end();
        resolve(text);
      }
    });
    socket.write('CONNECT {"verbose":false}\r\nSUB _INBOX.cleanup 1\r\n');
    for (const name of names) socket.write(`PUB $JS.API.STREAM.DELETE.${name} _INBOX.cleanup 0\r\n\r\n`);
  });
}

async function openPerson(t, url, username) {
  const chrome = await launchBrowser({ args: MEDIA_ARGS });
  t.after(() => chrome.close());
  const page = chrome.context.pages()[0] || (await chrome.context.newPage());
  page.setDefaultTimeout(30_000);
  const sockets = [];
  page.on('websocket', (socket) => sockets.push(socket.url()));
  await login(page, url, username);
  await page.getByRole('link', { name: '会议', exact: true }).waitFor();
  const me = await page.evaluate(() => fetch('/api/auth/me').then((response) => response.json()));
  return { page, sockets, accountId: me.account.id };
}

async function enterRoom(person, url, meetingId) {
  const { page } = person;
  await page.goto(`${url}/meetings/${meetingId}`);
  await page.getByRole('link', { name: '进入会议室' }).click();
  await page.waitForURL(new RegExp(`/meetings/${meetingId}/room$`));
  await page.waitForFunction(() => {
    const video = document.querySelector('.room-preview');
    return video && video.videoWidth > 0;
  }, null, { timeout: MEDIA_TIMEOUT_MS });
  await page.getByRole('button', { name: '进入会议' }).click();
  try {
    await page.getByTestId('room').waitFor({ timeout: MEDIA_TIMEOUT_MS });
  } catch (error) {
    const shown = await page.locator('main').innerText();
    throw new Error(`the room did not open at ${url}: ${shown}; hub sockets ${person.sockets}`, { cause: error });
  }
}

async function waitForVideo(page, accountId) {
  await page.waitForFunction(
    (account) => {
      const video = document.querySelector(`.room-tile video[data-account="${account}"][data-source="camera"]`);
      return video && !video.hidden && video.srcObject && video.getVideoPlaybackQuality().totalVideoFrames > 10;
    },
    accountId,
    { timeout: MEDIA_TIMEOUT_MS },
  );
}

test('room page follows the hosting node', { timeout: 600_000 }, async (t) => {
  const suffix = `${process.pid}${Date.now()}`;
  const schema = `browser_nodes_${suffix}`;
  const prefix = `browser-nodes-${suffix}`;
  psql(`CREATE SCHEMA ${schema}`);
  const shared = await mkdtemp(path.join(os.tmpdir(), 'dangwu-nodes-'));
  const nodes = [];
  // The nodes stop first, so that none creates the NATS streams again.
  t.after(async () => {
    for (const node of nodes.reverse()) await node.stop();
    psql(`DROP SCHEMA ${schema} CASCADE`);
    await rm(shared, { recursive: true, force: true });
    const stem = prefix.toUpperCase();
    await deleteStreams([`${stem}_HUB`, `KV_${stem}_PRESENCE`, `KV_${stem}_PLACEMENT`]);
  });
  const common = [
    '--database-url', `${PG_URL}?options=-c%20search_path%3D${schema}`,
    '--nats-url', NATS.href,
    '--nats-prefix', prefix,
    '--files-dir', path.join(shared, 'files'),
    '--audit-key-file', path.join(shared, 'audit-signing-key.pem'),
    '--media-shards', '1',
  ];
  const nodeA = await startServer({ args: () => [...common, '--node-id', 'a'] });
  nodes.push(nodeA);
  // Pages served by node A may connect to node B, whose public URL is node A's.
  const nodeB = await startServer({
    args: (url) => [...common, '--node-id', 'b', '--node-url', url, '--public-url', nodeA.url],
  });
  nodes.push(nodeB);

  const api = await apiSession(nodeA.url, 'shengwei');
  const meeting = (await api('GET', '/api/meetings')).items.find((item) => item.title === '十二月支委会');
  const host = await openPerson(t, nodeB.url, 'shengwei');
  const recorder = await openPerson(t, nodeA.url, 'dy026');

  await enterRoom(host, nodeB.url, meeting.id);
  await enterRoom(recorder, nodeA.url, meeting.id);
  const hubOnB = `${nodeB.url.replace('http', 'ws')}/ws?v=1`;
  assert.ok(recorder.sockets.includes(hubOnB), `the page on node A connected to node B: ${recorder.sockets}`);

  await waitForVideo(host.page, recorder.accountId);
  await waitForVideo(recorder.page, host.accountId);
  assert.equal(await recorder.page.getByTestId('room-participant').count(), 2);
});
