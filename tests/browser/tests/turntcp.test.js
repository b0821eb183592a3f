// A meeting member whose browser may reach the media engine only through a
// TURN relay allocated over TCP. coturn runs on loopback with its UDP
// listener off, so an allocation can only be made over TCP, and the server
// hands out `turn:...?transport=tcp` with TURN REST credentials. The member's
// page is forced to `iceTransportPolicy: 'relay'`, so it gathers no host
// candidates. The host joins on a direct path. Each page must decode the
// other's camera video, the member's selected candidate pair must be a relay
// candidate over TCP, and coturn's log must show the member's allocation on a
// TCP connection.
//
// Demo accounts of 云溪市委机关党支部: shengwei (胡丽娟, host of 十二月支委会)
// and dy026 (邓玉兰, its recorder).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MEDIA_ARGS, apiSession, launchBrowser, login, startServer } from '../lib/harness.js';

/** Generous wait for media on a busy machine. */
const MEDIA_TIMEOUT_MS = 90_000;
/** Secret shared by coturn (`static-auth-secret`) and the server (`--turn-secret`). */
const TURN_SECRET = 'browser-turn-tcp-secret';
/**
 * Secret the server is started with. Setting DANGWU_TEST_TURN_SECRET to a
 * different value misconfigures TURN, which must make this test fail.
 */
const SERVER_TURN_SECRET = process.env.DANGWU_TEST_TURN_SECRET || TURN_SECRET;

function freeTcpPort() {
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

/**
 * Starts Debian's coturn on 127.0.0.1 with only a TCP listener and returns
 * `{ port, log, stop }`, where `log()` returns everything it printed so far.
 */
async function startCoturn() {
  const found = spawnSync('turnserver', ['--version'], { stdio: 'ignore' });
  if (found.error) {
    throw new Error(`turnserver not found (${found.error.message}); scripts/setup-deps --test installs coturn`);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dangwu-coturn-'));
  const port = await freeTcpPort();
  const child = spawn('turnserver', [
    '-n',
    '--listening-ip=127.0.0.1',
    '--relay-ip=127.0.0.1',
    `--listening-port=${port}`,
    // Clients may allocate only over TCP, while the relay to the engine stays UDP.
    '--no-udp',
    '--use-auth-secret',
    `--static-auth-secret=${TURN_SECRET}`,
    '--realm=dangwu.test',
    // coturn denies loopback peers without this flag, and the engine listens on loopback here.
    '--allow-loopback-peers',
    '--no-tcp-relay',
    '--no-cli',
    '--no-tls',
    '--no-dtls',
    '--fingerprint',
    '--verbose',
    '--log-file=stdout',
    `--db=${path.join(dir, 'turndb')}`,
    `--pidfile=${path.join(dir, 'turnserver.pid')}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  child.stdout.on('data', (chunk) => output.push(chunk.toString()));
  child.stderr.on('data', (chunk) => output.push(chunk.toString()));
  const log = () => output.join('');
  const deadline = Date.now() + 20_000;
  while (!log().includes(`TCP listener opened on : 127.0.0.1:${port}`)) {
    if (child.exitCode !== null) throw new Error(`turnserver exited with code ${child.exitCode}:\n${log()}`);
    if (Date.now() > deadline) throw new Error(`turnserver did not open its TCP listener on port ${port}:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    port,
    log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Opens a browser for one person and logs in. With `relayOnly`, every peer
 * connection the page creates uses only relay candidates. Each page keeps
 * its peer connections in `window.testPeers` so the test can read their stats.
 */
async function openPerson(t, server, username, { relayOnly }) {
  const chrome = await launchBrowser({ args: MEDIA_ARGS });
  t.after(() => chrome.close());
  const page = chrome.context.pages()[0] || (await chrome.context.newPage());
  page.setDefaultTimeout(30_000);
  await page.addInitScript((relay) => {
    const Native = window.RTCPeerConnection;
    window.testPeers = [];
    window.RTCPeerConnection = class extends Native {
      constructor(configuration = {}, ...rest) {
        super(relay ? { ...configuration, iceTransportPolicy: 'relay' } : configuration, ...rest);
        window.testPeers.push(this);
      }
    };
  }, relayOnly);
  await login(page, server.url, username);
  await page.getByRole('link', { name: '会议', exact: true }).waitFor();
  const me = await page.evaluate(() => fetch('/api/auth/me').then((response) => response.json()));
  return { page, accountId: me.account.id };
}

/** Opens the room from the meeting page, passes the device check and enters. */
async function enterRoom(person, server, meetingId) {
  const { page } = person;
  await page.goto(`${server.url}/meetings/${meetingId}`);
  await page.getByRole('link', { name: '进入会议室' }).click();
  await page.waitForURL(new RegExp(`/meetings/${meetingId}/room$`));
  await page.waitForFunction(() => {
    const video = document.querySelector('.room-preview');
    return video && video.videoWidth > 0;
  }, null, { timeout: MEDIA_TIMEOUT_MS });
  await page.getByRole('button', { name: /^(进入会议|申请进入)$/ }).click();
  await page.getByTestId('room').waitFor();
}

/** Returns the frames shown by the camera tile of one account, or -1 without such a tile. */
function framesShown(page, accountId) {
  return page.evaluate((account) => {
    const video = document.querySelector(`.room-tile video[data-account="${account}"][data-source="camera"]`);
    if (!video || video.hidden || !video.srcObject) return -1;
    return video.getVideoPlaybackQuality().totalVideoFrames;
  }, accountId);
}

/** Waits until the camera tile of one account on `page` shows ten new frames. */
async function waitForVideoPlaying(page, accountId, what) {
  const deadline = Date.now() + MEDIA_TIMEOUT_MS;
  let first = -1;
  while (Date.now() < deadline) {
    const frames = await framesShown(page, accountId);
    if (frames > 0 && first < 0) first = frames;
    if (first > 0 && frames > first + 10) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${what}: camera video of account ${accountId} did not play; frames ${await framesShown(page, accountId)}`);
}

/**
 * Returns the local candidate of the selected pair of the page's newest open
 * peer connection (`candidateType`, `relayProtocol`, `protocol`), or null.
 */
function selectedLocalCandidate(page) {
  return page.evaluate(async () => {
    const peer = window.testPeers.filter((p) => p.connectionState !== 'closed').at(-1);
    if (!peer) return null;
    const stats = [...(await peer.getStats()).values()];
    const transport = stats.find((report) => report.type === 'transport' && report.selectedCandidatePairId);
    if (!transport) return null;
    const pair = stats.find((report) => report.id === transport.selectedCandidatePairId);
    const local = pair && stats.find((report) => report.id === pair.localCandidateId);
    if (!local) return null;
    return { candidateType: local.candidateType, relayProtocol: local.relayProtocol, protocol: local.protocol };
  });
}

test('relay-only member joins through TURN over TCP', { timeout: 300_000 }, async (t) => {
  const coturn = await startCoturn();
  t.after(() => coturn.stop());
  const turnUrl = `turn:127.0.0.1:${coturn.port}?transport=tcp`;
  const server = await startServer({ args: () => ['--turn-url', turnUrl, '--turn-secret', SERVER_TURN_SECRET] });
  t.after(() => server.stop());
  const api = await apiSession(server.url, 'shengwei');
  const meeting = (await api('GET', '/api/meetings')).items.find((item) => item.title === '十二月支委会');
  assert.ok(meeting, 'the demo meeting 十二月支委会 exists');

  const host = await openPerson(t, server, 'shengwei', { relayOnly: false });
  const member = await openPerson(t, server, 'dy026', { relayOnly: true });

  // The server offers the TCP relay URL with a credential for the member.
  const iceServers = await member.page.evaluate(
    (id) => fetch(`/api/meetings/${id}/live/ice-servers`).then((response) => response.json()),
    meeting.id,
  );
  assert.deepEqual(iceServers.ice_servers.map((entry) => entry.urls), [[turnUrl]], JSON.stringify(iceServers));
  const username = iceServers.ice_servers[0].username;
  assert.ok(username.endsWith(`:${member.accountId}`), `TURN username ${username}`);

  await enterRoom(host, server, meeting.id);
  await enterRoom(member, server, meeting.id);
  await waitForVideoPlaying(member.page, host.accountId, 'the relay-only member');
  await waitForVideoPlaying(host.page, member.accountId, 'the host');

  const candidate = await selectedLocalCandidate(member.page);
  assert.ok(candidate, 'the member has a selected candidate pair');
  assert.equal(candidate.candidateType, 'relay', JSON.stringify(candidate));
  assert.equal(candidate.relayProtocol, 'tcp', JSON.stringify(candidate));

  const log = coturn.log();
  assert.match(log, /tcp or tls connected to: 127\.0\.0\.1:\d+/, `coturn accepted no TCP client:\n${log}`);
  // The page fetched its own credential when it joined, with a later expiry than
  // the one above, so only the account part of the username is compared.
  assert.match(
    log,
    new RegExp(`user <\\d+:${member.accountId}>: incoming packet ALLOCATE processed, success`),
    `coturn did not allocate a relay for account ${member.accountId}:\n${log}`,
  );
  assert.ok(
    log.includes('incoming packet CREATE_PERMISSION processed, success'),
    `coturn did not permit a peer:\n${log}`,
  );
  assert.doesNotMatch(log, /UDP listener opened/, 'coturn must not listen on UDP for clients');
});
