// Headless Chromium pages meet through the SFU example server: every page must decode
// every other page's video (framesDecoded rising) and receive its audio.
//
// Usage: SFU_MEETING_BIN=<path to the meeting example> node meeting.test.mjs [rounds...]
// A round is a page count, optionally followed by `s` to make the first page publish three
// simulcast layers (for example `3s`). Each round runs against a fresh server. Default:
// 2, 5 and 3s. In a simulcast round the other pages must also receive the simulcast video
// wider than its lowest layer, which shows the engine forwards the upper layers.

import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
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

async function meet(browser, round) {
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
    const frames = second.map((r) => r.inbound.filter((s) => s.kind === 'video').map((s) => s.framesDecoded));
    console.log(`${round}: ${count} pages: every page decodes ${count - 1} videos and receives ${count - 1} audio tracks; frames decoded ${JSON.stringify(frames)}`);
  } finally {
    for (const context of contexts) await context.close();
    server.kill();
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
  const deadline = Date.now() + PATIENCE_MS;
  for (;;) {
    const widths = (await reports(pages.slice(1))).map((report) =>
      Math.max(0, ...report.inbound
        .filter((s) => s.kind === 'video' && s.trackIdentifier.startsWith('page0-'))
        .map((s) => s.frameWidth)));
    if (widths.every((width) => width > 320)) {
      console.log(`simulcast: subscribers receive page0 at widths ${JSON.stringify(widths)}`);
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`simulcast: subscribers stayed on the lowest layer: ${JSON.stringify(widths)}`);
    }
    await sleep(500);
  }
}

if (!SERVER) {
  console.error('SFU_MEETING_BIN must name the built meeting example');
  process.exit(2);
}
const rounds = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
try {
  for (const round of rounds.length ? rounds : ['2', '5', '3s']) {
    await meet(browser, round);
  }
} catch (err) {
  console.error(err.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
