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
import { test } from 'node:test';
import { clusterSetup } from '../lib/cluster.js';
import { MEDIA_ARGS, apiSession, launchBrowser, login, startServer } from '../lib/harness.js';

const MEDIA_TIMEOUT_MS = 90_000;

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
  const { args: common, nodes } = await clusterSetup(t, 'nodes');
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
