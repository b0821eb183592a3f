// Headless Chromium pages meet through the SFU example server: every page must decode
// every other page's video (framesDecoded rising) and receive its audio.
//
// Usage: SFU_MEETING_BIN=<path to the meeting example> node meeting.test.mjs [rounds...]
// A round is a page count, optionally followed by `s` to make the first page publish three
// simulcast layers (for example `3s`), or `firefox`: a headless Firefox page publishing
// simulcast meets a Chromium page that joins after it, or `tcp`: two pages of a Chromium
// that may not use UDP meet over ICE-TCP. Each round runs against a fresh
// server. Default: 2, 5, 3s, firefox and tcp. In a simulcast round the other pages must also
// receive the simulcast video wider than its lowest layer, which shows the engine forwards
// the upper layers. In every round the engine must have received transport-wide congestion
// control (TWCC) feedback from every Chromium page, which sets their bandwidth estimate.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';
const SERVER = process.env.SFU_MEETING_BIN;
const PATIENCE_MS = 60_000;
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
];

// Firefox preferences: fake camera and microphone granted without prompts, host
// candidates on loopback, and background services (updates, telemetry, safe browsing,
// DNS over HTTPS) turned off.
const FIREFOX_PREFS = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.peerconnection.default_iceservers': '[]',
  'media.autoplay.default': 0,
  'media.gmp-manager.updateEnabled': false,
  'media.gmp-gmpopenh264.enabled': false,
  'network.trr.mode': 5,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'app.update.auto': false,
  'app.update.enabled': false,
  'app.normandy.enabled': false,
  'extensions.update.enabled': false,
  'extensions.getAddons.cache.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.newtabpage.enabled': false,
  'browser.region.network.url': '',
  'browser.search.geoip.url': '',
  'datareporting.healthreport.uploadEnabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'services.settings.server': 'data:,',
};

// Starts headless Firefox on `url` with a fresh profile. Its `close()` stops the browser
// and removes the profile.
function launchFirefox(url) {
  const profile = mkdtempSync(join(tmpdir(), 'sfu-firefox-'));
  const prefs = Object.entries(FIREFOX_PREFS)
    .map(([name, value]) => `user_pref(${JSON.stringify(name)}, ${JSON.stringify(value)});`);
  writeFileSync(join(profile, 'user.js'), `${prefs.join('\n')}\n`);
  const child = spawn(FIREFOX, ['--headless', '--no-remote', '--profile', profile, url], {
    stdio: 'ignore',
    detached: true,
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    async close() {
      // The browser runs in its own process group with its content processes.
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
      await Promise.race([exited, sleep(10_000)]);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// The latest report a page opened with `post=1` sent to the server.
async function postedReport(url, id) {
  const response = await fetch(`${url}/report?id=${id}`);
  if (response.status !== 200) return { id, connection: 'new', inbound: [] };
  return response.json();
}

function startServer() {
  return new Promise((resolve, reject) => {
    const server = spawn(SERVER, ['0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    server.on('error', reject);
    server.stdout.on('data', (chunk) => {
      const match = /listening on (http:\/\/\S+)/.exec(chunk.toString());
      if (match) resolve({ server, url: match[1] });
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Per page: video tracks with frames decoded and audio tracks with samples received.
async function reports(pages) {
  return Promise.all(pages.map((page) => page.evaluate(() => window.report())));
}

function receiving(report) {
  const video = report.inbound.filter((s) => s.kind === 'video' && s.framesDecoded > 0);
  const audio = report.inbound.filter((s) => s.kind === 'audio' && s.samples > 0);
  return { video: video.length, audio: audio.length };
}

// Two pages of a Chromium whose profile forbids UDP must reach the engine's
// ICE-TCP candidate and receive each other. `disable_non_proxied_udp` is Chromium's
// WebRTC IP handling policy (the `webrtc.ip_handling_policy` preference); with no proxy
// configured it leaves only TCP candidates.
async function meetOverTcp() {
  const profile = mkdtempSync(join(tmpdir(), 'sfu-chromium-tcp-'));
  mkdirSync(join(profile, 'Default'));
  writeFileSync(join(profile, 'Default', 'Preferences'), JSON.stringify({ webrtc: { ip_handling_policy: 'disable_non_proxied_udp' } }));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    await meet({ newContext: async () => context }, '2', 'tcp');
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

async function meet(browser, round, protocol = null) {
  const count = Number.parseInt(round, 10);
  const simulcast = round.endsWith('s');
  const { server, url } = await startServer();
  const contexts = [];
  try {
    const pages = [];
    for (let i = 0; i < count; i++) {
      const context = await browser.newContext();
      contexts.push(context);
      const page = await context.newPage();
      const mode = simulcast && i === 0 ? '&simulcast=1' : '';
      await page.goto(`${url}/?id=page${i}${mode}`);
      pages.push(page);
    }

    const deadline = Date.now() + PATIENCE_MS;
    let first;
    for (;;) {
      first = await reports(pages);
      const ready = first.every((r) => {
        const { video, audio } = receiving(r);
        return video === count - 1 && audio === count - 1;
      });
      if (ready) break;
      if (Date.now() > deadline) {
        throw new Error(`${count} pages: not every page receives all others: ${JSON.stringify(first)}`);
      }
      await sleep(500);
    }

    // Every received video must keep decoding. A page starved of CPU on a small
    // machine decodes a 1280-pixel layer slowly, so wait for progress rather than
    // judging one fixed window.
    const decodeDeadline = Date.now() + PATIENCE_MS;
    let second;
    for (;;) {
      await sleep(1000);
      second = await reports(pages);
      const stalled = stalledTracks(first, second);
      if (stalled.length === 0) break;
      if (Date.now() > decodeDeadline) {
        throw new Error(`framesDecoded not rising on ${stalled.join(', ')}: ${JSON.stringify(first)} then ${JSON.stringify(second)}`);
      }
    }
    if (simulcast) await expectUpperLayer(pages);
    await expectTwccFeedback(url, pages.map((_, i) => `page${i}`));
    if (protocol) {
      const used = second.map((r) => r.protocol);
      if (!used.every((p) => p === protocol)) throw new Error(`pages connected over ${JSON.stringify(used)}, not ${protocol}`);
      console.log(`${protocol}: every page's selected candidate pair is ${protocol}`);
    }
    const frames = second.map((r) => r.inbound.filter((s) => s.kind === 'video').map((s) => s.framesDecoded));
    console.log(`${round}: ${count} pages: every page decodes ${count - 1} videos and receives ${count - 1} audio tracks; frames decoded ${JSON.stringify(frames)}`);
  } finally {
    for (const context of contexts) await context.close();
    server.kill();
  }
}

// Waits until the engine has counted TWCC feedback packets from every named participant.
async function expectTwccFeedback(url, ids) {
  const deadline = Date.now() + PATIENCE_MS;
  for (;;) {
    const stats = await Promise.all(ids.map(async (id) => {
      const response = await fetch(`${url}/downlink?id=${id}`);
      return { id, ...(response.status === 200 ? await response.json() : { twcc_feedback_packets: 0 }) };
    }));
    if (stats.every((s) => s.twcc_feedback_packets > 0)) {
      console.log(`twcc: engine downlink stats ${JSON.stringify(stats)}`);
      return;
    }
    if (Date.now() > deadline) throw new Error(`twcc: no feedback from some pages: ${JSON.stringify(stats)}`);
    await sleep(500);
  }
}

// Names the received video tracks, as `page:track`, whose framesDecoded did not
// rise between two reports.
function stalledTracks(first, second) {
  const stalled = [];
  second.forEach((report, index) => {
    for (const stats of report.inbound.filter((s) => s.kind === 'video')) {
      const before = first[index].inbound.find((s) => s.trackIdentifier === stats.trackIdentifier);
      if (!before || stats.framesDecoded <= before.framesDecoded) stalled.push(`${report.id}:${stats.trackIdentifier}`);
    }
  });
  return stalled;
}

// The simulcast publisher's lowest layer is a quarter of 1280 pixels wide. A wider
// picture at a subscriber means the engine forwards one of the higher layers.
async function expectUpperLayer(pages) {
  await expectWiderThanLowest(() => reports(pages.slice(1)), 'page0');
}

// Waits until every subscriber report shows `publisher`'s video wider than 320 pixels.
async function expectWiderThanLowest(subscriberReports, publisher) {
  const deadline = Date.now() + PATIENCE_MS;
  for (;;) {
    const widths = (await subscriberReports()).map((report) =>
      Math.max(0, ...report.inbound
        .filter((s) => s.kind === 'video' && s.trackIdentifier.startsWith(`${publisher}-`))
        .map((s) => s.frameWidth)));
    if (widths.every((width) => width > 320)) {
      console.log(`simulcast: subscribers receive ${publisher} at widths ${JSON.stringify(widths)}`);
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`simulcast: subscribers stayed on the lowest layer: ${JSON.stringify(widths)}`);
    }
    await sleep(500);
  }
}

// Firefox publishes simulcast, then a Chromium page joins. Each must decode the other's
// video and receive its audio. Firefox has no H.264 here, so the engine's answer to the
// Chromium page must keep only codecs that Firefox decodes.
async function meetFirefox(browser) {
  if (!existsSync(FIREFOX)) throw new Error(`firefox: ${FIREFOX} not found; set FIREFOX`);
  const { server, url } = await startServer();
  const firefox = launchFirefox(`${url}/?id=firefox&simulcast=1&post=1`);
  let context;
  try {
    const joinDeadline = Date.now() + PATIENCE_MS;
    while ((await postedReport(url, 'firefox')).connection !== 'connected') {
      if (Date.now() > joinDeadline) throw new Error('firefox: page did not connect');
      await sleep(500);
    }
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${url}/?id=chromium`);
    const both = async () => [await postedReport(url, 'firefox'), await page.evaluate(() => window.report())];

    const deadline = Date.now() + PATIENCE_MS;
    let first;
    for (;;) {
      first = await both();
      if (first.every((r) => receiving(r).video === 1 && receiving(r).audio === 1)) break;
      if (Date.now() > deadline) throw new Error(`firefox: pages do not receive each other: ${JSON.stringify(first)}`);
      await sleep(500);
    }
    const decodeDeadline = Date.now() + PATIENCE_MS;
    let second;
    for (;;) {
      // Firefox posts a report every second, so wait longer than that between reports.
      await sleep(2000);
      second = await both();
      const stalled = stalledTracks(first, second);
      if (stalled.length === 0) break;
      if (Date.now() > decodeDeadline) {
        throw new Error(`firefox: framesDecoded not rising on ${stalled.join(', ')}: ${JSON.stringify(first)} then ${JSON.stringify(second)}`);
      }
    }
    await expectWiderThanLowest(async () => [await page.evaluate(() => window.report())], 'firefox');
    await expectTwccFeedback(url, ['chromium']);
    const frames = second.map((r) => r.inbound.filter((s) => s.kind === 'video').map((s) => s.framesDecoded));
    console.log(`firefox: Firefox and Chromium decode each other's video and receive audio; frames decoded ${JSON.stringify(frames)}`);
  } finally {
    if (context) await context.close();
    await firefox.close();
    server.kill();
  }
}

if (!SERVER) {
  console.error('SFU_MEETING_BIN must name the built meeting example');
  process.exit(2);
}
const rounds = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
try {
  for (const round of rounds.length ? rounds : ['2', '5', '3s', 'firefox', 'tcp']) {
    if (round === 'firefox') await meetFirefox(browser);
    else if (round === 'tcp') await meetOverTcp();
    else await meet(browser, round);
  }
} catch (err) {
  console.error(err.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
