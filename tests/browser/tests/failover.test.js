// Three nodes over one PostgreSQL schema and one NATS server, in headless
// Chromium with real WebRTC. Node A serves both pages, as a proxy would.
// The region header the pages send makes node A place the meeting on node
// B, because only B and C serve that region. After both pages decode
// each other's video on B, node B gets SIGKILL. Each page must show the
// reconnecting status, ask for a node naming B as unreachable, move its hub
// socket to node C and decode the other page's video again there.
//
// Every phase is logged with the seconds since the test started, and so
// are the pages' console messages and WebSocket events, so that a hang
// shows where it stopped. Each phase has its own timeout.
//
// Needs PostgreSQL on 127.0.0.1:5432 (database `test`, trust
// authentication, or the URL in DANGWU_TEST_PG) and NATS with JetStream on
// 127.0.0.1:4222 (or DANGWU_TEST_NATS).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterSetup } from '../lib/cluster.js';
import { MEDIA_ARGS, apiSession, launchBrowser, login, startServer } from '../lib/harness.js';

/** Region of nodes B and C, which the pages send as a proxy would. */
const MEDIA_REGION = 'media';
/** Maximum wait for a page to enter the room and see video before the kill. */
const ENTER_TIMEOUT_MS = 90_000;
/** Maximum wait for the pages to decode each other's video after the kill. */
const REJOIN_TIMEOUT_MS = 60_000;

const started = Date.now();

function log(message) {
  console.log(`[failover ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

/** Runs one phase and fails with its name and `describe()` when it errs or takes longer than `ms`. */
async function phase(name, ms, run, describe = async () => '') {
  log(`${name}: start`);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    const result = await Promise.race([run(), timeout]);
    log(`${name}: done`);
    return result;
  } catch (error) {
    const details = await describe().catch((failure) => `(no details: ${failure.message})`);
    throw new Error(`${name} failed: ${error.message}\n${details}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a browser logged in at `url`, logging the page's console and WebSocket events. */
async function openPerson(t, url, username) {
  const chrome = await launchBrowser({ args: MEDIA_ARGS });
  t.after(() => chrome.close());
  await chrome.context.setExtraHTTPHeaders({ 'X-Dangwu-Region': MEDIA_REGION });
  const page = chrome.context.pages()[0] || (await chrome.context.newPage());
  page.setDefaultTimeout(30_000);
  const sockets = [];
  page.on('console', (message) => log(`${username} console.${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => log(`${username} page error: ${error.message}`));
  page.on('websocket', (socket) => {
    sockets.push(socket.url());
    log(`${username} websocket open ${socket.url()}`);
    socket.on('close', () => log(`${username} websocket closed ${socket.url()}`));
  });
  page.on('request', (request) => {
    if (request.url().includes('/node')) log(`${username} request ${request.url()}`);
  });
  await login(page, url, username);
  await page.getByRole('link', { name: '会议', exact: true }).waitFor();
  const me = await page.evaluate(() => fetch('/api/auth/me').then((response) => response.json()));
  return { name: username, page, sockets, accountId: me.account.id };
}

/** Returns what a page shows and which hub sockets it opened, for failure messages. */
async function describePeople(people) {
  const parts = [];
  for (const person of people) {
    const mainText = await person.page.locator('main').innerText({ timeout: 2_000 }).catch(() => '(no main)');
    parts.push(`${person.name}: shows ${JSON.stringify(mainText.slice(0, 400))}; hub sockets ${person.sockets.join(', ')}`);
  }
  return parts.join('\n');
}

async function enterRoom(person, url, meetingId) {
  const { page } = person;
  await page.goto(`${url}/meetings/${meetingId}`);
  await page.getByRole('link', { name: '进入会议室' }).click();
  await page.waitForURL(new RegExp(`/meetings/${meetingId}/room$`));
  await page.waitForFunction(() => {
    const video = document.querySelector('.room-preview');
    return video && video.videoWidth > 0;
  }, null, { timeout: ENTER_TIMEOUT_MS });
  await page.getByRole('button', { name: '进入会议' }).click();
  await page.getByTestId('room').waitFor({ timeout: ENTER_TIMEOUT_MS });
}

/**
 * Waits until the page decodes the camera video of `accountId` from a track
 * not marked by `markTracks`, and its decoded frame count keeps rising.
 */
async function waitForNewVideo(page, accountId, timeout) {
  const handle = await page.waitForFunction(
    (account) => {
      const video = document.querySelector(`.room-tile video[data-account="${account}"][data-source="camera"]`);
      if (!video || video.hidden || !video.srcObject) return false;
      const track = video.srcObject.getVideoTracks()[0];
      if (!track || track.readyState !== 'live' || track.beforeKill) return false;
      return video.getVideoPlaybackQuality().totalVideoFrames > 10;
    },
    accountId,
    { timeout },
  );
  await handle.dispose();
  const frames = () =>
    page.evaluate((account) => {
      const video = document.querySelector(`.room-tile video[data-account="${account}"][data-source="camera"]`);
      return video ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
    }, accountId);
  const first = await frames();
  await page.waitForFunction(
    ({ account, floor }) => {
      const video = document.querySelector(`.room-tile video[data-account="${account}"][data-source="camera"]`);
      return video && video.getVideoPlaybackQuality().totalVideoFrames > floor;
    },
    { account: accountId, floor: first + 10 },
    { timeout },
  );
}

/** Marks the page's current remote tracks, so that later checks need new ones. */
async function markTracks(page) {
  await page.evaluate(() => {
    for (const video of document.querySelectorAll('.room-tile video')) {
      for (const track of video.srcObject ? video.srcObject.getTracks() : []) track.beforeKill = true;
    }
  });
}

/** Records in the page whether the reconnecting status was ever shown, checking every 20 ms. */
async function watchReconnecting(page) {
  await page.evaluate(() => {
    window.reconnectingShown = null;
    setInterval(() => {
      const banner = document.querySelector('[data-testid="room-reconnecting"]');
      if (banner && !banner.hidden && window.reconnectingShown === null) window.reconnectingShown = banner.textContent;
    }, 20);
  });
}

test('room pages rejoin after their node dies', { timeout: 600_000 }, async (t) => {
  const { args: common, nodes } = await clusterSetup(t, 'failover', { log });

  // Node A serves the pages and is in a region of its own. B and C serve
  // the pages' region and accept hub sockets from pages served by node A,
  // whose URL is their public URL.
  const nodeA = await phase('start node A', 90_000, () =>
    startServer({ args: () => [...common, '--node-id', 'a', '--media-region', 'front'] }),
  );
  nodes.push(nodeA);
  const mediaNode = (id) =>
    startServer({
      args: (url) => [...common, '--node-id', id, '--node-url', url, '--public-url', nodeA.url, '--media-region', MEDIA_REGION],
    });
  const nodeB = await phase('start node B', 90_000, () => mediaNode('b'));
  nodes.push(nodeB);
  const nodeC = await phase('start node C', 90_000, () => mediaNode('c'));
  nodes.push(nodeC);
  const hubOn = (node) => `${node.url.replace('http', 'ws')}/ws?v=1`;
  const serverLogs = () =>
    Promise.resolve(
      [['A', nodeA], ['B', nodeB], ['C', nodeC]].map(([name, node]) => `node ${name} output:\n${node.output.join('').slice(-3000)}`).join('\n'),
    );

  const api = await apiSession(nodeA.url, 'shengwei');
  const meeting = (await api('GET', '/api/meetings')).items.find((item) => item.title === '十二月支委会');
  assert.ok(meeting, 'the demo meeting 十二月支委会 exists');
  const host = await phase('open host page', 60_000, () => openPerson(t, nodeA.url, 'shengwei'));
  const recorder = await phase('open recorder page', 60_000, () => openPerson(t, nodeA.url, 'dy026'));
  // Node A places the meeting only among the nodes it has read from NATS.
  await phase('node A places the meeting on node B', 30_000, async () => {
    for (;;) {
      const choice = await host.page.evaluate((id) => fetch(`/api/meetings/${id}/node`).then((response) => response.json()), meeting.id);
      if (choice.node_id === 'b') return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }, serverLogs);
  const people = [host, recorder];
  const describe = async () => `${await describePeople(people)}\n${await serverLogs()}`;

  await phase('host enters the room', ENTER_TIMEOUT_MS, () => enterRoom(host, nodeA.url, meeting.id), describe);
  await phase('recorder enters the room', ENTER_TIMEOUT_MS, () => enterRoom(recorder, nodeA.url, meeting.id), describe);
  for (const person of people) {
    assert.ok(person.sockets.includes(hubOn(nodeB)), `${person.name}'s page moved its hub socket to node B: ${person.sockets}`);
  }
  await phase('pages decode each other on node B', ENTER_TIMEOUT_MS, async () => {
    await waitForNewVideo(host.page, recorder.accountId, ENTER_TIMEOUT_MS);
    await waitForNewVideo(recorder.page, host.accountId, ENTER_TIMEOUT_MS);
  }, describe);

  for (const person of people) {
    await markTracks(person.page);
    await watchReconnecting(person.page);
  }
  await phase('SIGKILL node B', 10_000, () => nodeB.kill());

  for (const person of people) {
    const statusText = await phase(`${person.name} shows the reconnecting status`, 15_000, async () => {
      const handle = await person.page.waitForFunction(() => window.reconnectingShown, null, { timeout: 15_000 });
      return handle.jsonValue();
    }, describe);
    assert.match(statusText, /正在重新连接/);
  }
  await phase('pages decode each other on node C', REJOIN_TIMEOUT_MS, async () => {
    await waitForNewVideo(host.page, recorder.accountId, REJOIN_TIMEOUT_MS);
    await waitForNewVideo(recorder.page, host.accountId, REJOIN_TIMEOUT_MS);
  }, describe);

  for (const person of people) {
    assert.ok(person.sockets.includes(hubOn(nodeC)), `${person.name}'s page moved its hub socket to node C: ${person.sockets}`);
    await assert.doesNotReject(
      person.page.getByTestId('room-reconnecting').waitFor({ state: 'hidden', timeout: 10_000 }),
      `${person.name}'s page hides the reconnecting status`,
    );
    assert.equal(await person.page.getByTestId('room-participant').count(), 2, `${person.name}'s page lists both people`);
  }
});
