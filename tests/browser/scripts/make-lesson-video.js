// Records tests/fixtures/lesson.webm: a 3-second VP8 WebM of a moving bar
// on a 160x90 canvas, made by headless Chromium's MediaRecorder, for the
// learning browser test. Run from tests/browser: node scripts/make-lesson-video.js

import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { launchBrowser, repoRoot } from '../lib/harness.js';

const SECONDS = 3;

const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  const base64 = await page.evaluate(async (seconds) => {
    const canvas = document.createElement('canvas');
    canvas.width = 160;
    canvas.height = 90;
    document.body.append(canvas);
    const context = canvas.getContext('2d');
    const stream = canvas.captureStream(15);
    const recorder = new MediaRecorder(stream, { mimeType: 'video/webm;codecs=vp8', videoBitsPerSecond: 100_000 });
    const chunks = [];
    recorder.ondataavailable = (event) => chunks.push(event.data);
    const stopped = new Promise((resolve) => {
      recorder.onstop = resolve;
    });
    const started = performance.now();
    const draw = () => {
      const elapsed = (performance.now() - started) / 1000;
      context.fillStyle = '#c8161d';
      context.fillRect(0, 0, 160, 90);
      context.fillStyle = '#ffd700';
      context.fillRect((elapsed / seconds) * 140, 35, 20, 20);
      if (recorder.state === 'recording') requestAnimationFrame(draw);
    };
    recorder.start();
    draw();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    recorder.stop();
    await stopped;
    const bytes = new Uint8Array(await new Blob(chunks, { type: 'video/webm' }).arrayBuffer());
    let binary = '';
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary);
  }, SECONDS);
  const target = path.join(repoRoot, 'tests', 'fixtures', 'lesson.webm');
  await writeFile(target, Buffer.from(base64, 'base64'));
  console.log(`wrote ${target}`);
} finally {
  await browser.close();
}
