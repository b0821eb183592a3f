// The meeting room with three people in headless Chromium, each with a fake
// camera and microphone, and real WebRTC to the server's media engine on
// loopback. The host locks the meeting, so the third person waits in the
// lobby until admitted. Every page must decode the other two people's
// video, also after one page's hub connection drops and it enters again. A
// motion is voted on from the room pages and its result shown, and the
// host records the meeting's audio for a while, shown on every page. Then
// the host mutes one person, removes another, whose media stops, and ends
// the meeting. Cameras are sent as simulcast and the phone's small tiles
// receive a lower layer. One person switches to the low bandwidth mode for a
// while and receives the server's mixed audio.
//
// Demo accounts of 云溪市委机关党支部: shengwei (胡丽娟, host of 十二月支委会),
// dy026 (邓玉兰, its recorder) and dy027 (李春花, a committee member).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MEDIA_ARGS, apiSession, launchBrowser, login, startServer } from '../lib/harness.js';

/** Generous wait for media on a busy machine. */
const MEDIA_TIMEOUT_MS = 90_000;

/**
 * Opens a browser for one person and logs in. Every hub connection of the
 * page passes through a route in `hubRoutes`, so the test can drop it.
 */
async function openPerson(t, server, username, viewport) {
  const chrome = await launchBrowser({ viewport, args: MEDIA_ARGS });
  t.after(() => chrome.close());
  const page = chrome.context.pages()[0] || (await chrome.context.newPage());
  page.setDefaultTimeout(30_000);
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  // Keeps every peer connection the page creates, so the test can read its stats.
  await page.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.testPeers = [];
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        window.testPeers.push(this);
      }
    };
  });
  const hubRoutes = [];
  // Every hub message the page sent and received, parsed.
  const hubSent = [];
  const hubReceived = [];
  await page.routeWebSocket(/\/ws\?v=1$/, (route) => {
    const upstream = route.connectToServer();
    upstream.onMessage((message) => {
      hubReceived.push(JSON.parse(message));
      route.send(message);
    });
    route.onMessage((message) => {
      hubSent.push(JSON.parse(message));
      upstream.send(message);
    });
    hubRoutes.push(route);
  });
  await login(page, server.url, username);
  await page.getByRole('link', { name: '会议', exact: true }).waitFor();
  const me = await page.evaluate(() => fetch('/api/auth/me').then((response) => response.json()));
  return { page, pageErrors, hubRoutes, hubSent, hubReceived, accountId: me.account.id };
}

/** Opens the room from the meeting page and passes the device check. */
async function enterRoom(person, server, meetingId, buttonName) {
  const { page } = person;
  await page.goto(`${server.url}/meetings/${meetingId}`);
  await page.getByRole('link', { name: buttonName }).click();
  await page.waitForURL(new RegExp(`/meetings/${meetingId}/room$`));
  // The preview plays the fake camera before joining.
  await page.waitForFunction(() => {
    const video = document.querySelector('.room-preview');
    return video && video.videoWidth > 0;
  }, null, { timeout: MEDIA_TIMEOUT_MS });
  await page.getByRole('button', { name: /^(进入会议|申请进入)$/ }).click();
}

/**
 * Returns the number of frames shown by the tile of one person's camera or
 * screen, or -1 when there is no such tile with video.
 */
function framesShown(page, accountId, source) {
  return page.evaluate(
    ([account, kind]) => {
      const video = document.querySelector(`.room-tile video[data-account="${account}"][data-source="${kind}"]`);
      if (!video || video.hidden || !video.srcObject) return -1;
      return video.getVideoPlaybackQuality().totalVideoFrames;
    },
    [accountId, source],
  );
}

/** Waits until the tile of one person's camera (or screen) on `page` shows new frames. */
async function waitForVideoPlaying(page, accountId, source = 'camera') {
  const deadline = Date.now() + MEDIA_TIMEOUT_MS;
  let first = -1;
  while (Date.now() < deadline) {
    const frames = await framesShown(page, accountId, source);
    if (frames > 0 && first < 0) first = frames;
    if (first > 0 && frames > first + 10) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${source} video of account ${accountId} did not play; frames ${await framesShown(page, accountId, source)}`);
}

/**
 * Returns the inbound statistics of the server's mixed audio on the page's
 * current connection (`packetsReceived`, `totalSamplesReceived`), or null
 * when no mixed track arrives. The mix track's id ends in `-mix-mix`.
 */
function mixedAudioStats(page) {
  return page.evaluate(async () => {
    const peer = window.testPeers.at(-1);
    if (!peer || peer.connectionState === 'closed') return null;
    const stats = await peer.getStats();
    for (const report of stats.values()) {
      if (report.type === 'inbound-rtp' && report.kind === 'audio' && /-mix-mix$/.test(report.trackIdentifier || '')) {
        return { packetsReceived: report.packetsReceived, totalSamplesReceived: report.totalSamplesReceived };
      }
    }
    return null;
  });
}

/** Returns the frame width of each video the page's current connection receives, by track id. */
function receivedVideoWidths(page) {
  return page.evaluate(async () => {
    const peer = window.testPeers.at(-1);
    const widths = {};
    if (!peer || peer.connectionState === 'closed') return widths;
    const stats = await peer.getStats();
    for (const report of stats.values()) {
      if (report.type === 'inbound-rtp' && report.kind === 'video' && report.frameWidth) widths[report.trackIdentifier] = report.frameWidth;
    }
    return widths;
  });
}

/**
 * Waits until `check(widths)` holds for the frame widths of the videos the
 * page receives (by track id), and returns them.
 */
async function waitForVideoWidths(page, what, check) {
  const deadline = Date.now() + MEDIA_TIMEOUT_MS;
  let widths = {};
  while (Date.now() < deadline) {
    widths = await receivedVideoWidths(page);
    if (check(widths)) return widths;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${what}: received widths ${JSON.stringify(widths)}`);
}

/**
 * Waits until the newest `meeting_layer` request of `person` for the
 * camera of `publisher` has a `max_layer` that `check` accepts and the
 * server answered it with `meeting_ok`.
 */
async function waitForLayerRequest(person, publisher, check) {
  const deadline = Date.now() + MEDIA_TIMEOUT_MS;
  const own = (message) => message.type === 'meeting_layer' && message.publisher.includes(`-a${publisher.accountId}-`);
  let newest = null;
  while (Date.now() < deadline) {
    newest = person.hubSent.filter(own).at(-1);
    const accepted = newest && person.hubReceived.some((message) => message.id === newest.id && message.type === 'meeting_ok');
    if (accepted && check(newest.max_layer)) return newest;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`no accepted layer request: newest ${JSON.stringify(newest)}`);
}

/** Waits until the page's mixed audio has received `packets` more packets and samples than `from`. */
async function waitForMixedAudio(page, from, packets) {
  const deadline = Date.now() + MEDIA_TIMEOUT_MS;
  let stats = null;
  while (Date.now() < deadline) {
    stats = await mixedAudioStats(page);
    if (stats && stats.packetsReceived >= from.packetsReceived + packets && stats.totalSamplesReceived > from.totalSamplesReceived) return stats;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`mixed audio did not arrive: ${JSON.stringify(stats)}`);
}

test('three-person meeting room', { timeout: 600_000 }, async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const api = await apiSession(server.url, 'shengwei');
  const meeting = (await api('GET', '/api/meetings')).items.find((item) => item.title === '十二月支委会');

  const host = await openPerson(t, server, 'shengwei');
  const recorder = await openPerson(t, server, 'dy026');
  // The third person uses a phone-sized screen.
  const member = await openPerson(t, server, 'dy027', { width: 390, height: 844 });
  const people = [host, recorder, member];

  // The host enters first and locks the meeting.
  await enterRoom(host, server, meeting.id, '进入会议室');
  await host.page.getByTestId('room').waitFor();
  await host.page.getByTestId('meeting-status').getByText('进行中').waitFor();
  await host.page.getByRole('button', { name: '锁定会议' }).click();
  await host.page.getByRole('button', { name: '解除锁定' }).waitFor();

  // The recorder enters a locked meeting directly; the member waits.
  await enterRoom(recorder, server, meeting.id, '进入会议室');
  await recorder.page.getByTestId('room').waitFor();
  await enterRoom(member, server, meeting.id, '进入会议室');
  await member.page.getByTestId('room-lobby-wait').waitFor();
  const admit = host.page.getByRole('button', { name: '允许李春花进入' });
  await admit.click();
  await member.page.getByTestId('room').waitFor();
  assert.equal(await admit.count(), 0, 'the lobby entry is gone after admission');

  // Only the host sees the lock, record and end buttons. The others' pages
  // have them too, but hidden, so they are looked up with `includeHidden`.
  const hostOnlyButtons = [/^(锁定会议|解除锁定)$/, /^开始录音$/, /^结束会议$/];
  for (const name of hostOnlyButtons) {
    const button = host.page.getByRole('button', { name });
    await button.waitFor();
    assert.equal(await button.isVisible(), true, `the host sees the button ${name}`);
  }
  for (const person of [recorder, member]) {
    for (const name of hostOnlyButtons) {
      const button = person.page.getByRole('button', { name, includeHidden: true });
      // The label and the hidden attribute are set together, so once the
      // label is there the visibility is final.
      await button.waitFor({ state: 'attached' });
      assert.equal(await button.isVisible(), false, `account ${person.accountId} sees the host-only button ${name}`);
    }
  }

  // Each page decodes the other two people's camera video.
  for (const person of people) {
    for (const other of people) {
      if (other !== person) await waitForVideoPlaying(person.page, other.accountId);
    }
  }
  for (const person of people) {
    await person.page.getByTestId('room-participant').filter({ hasText: '李春花' }).waitFor();
    assert.equal(await person.page.getByTestId('room-participant').count(), 3);
  }

  // Cameras are sent in three simulcast layers, and each page requests the
  // layer that fits its tiles. The phone's tiles, at most 200 pixels wide,
  // request the quarter-size layer and receive it (160 pixels wide); the
  // host's larger tiles request more. The server accepts every request.
  const tileWidth = (person) => person.page.locator(`.room-tile[data-account="${recorder.accountId}"][data-source="camera"]`).evaluate((tile) => tile.clientWidth);
  const phoneTile = await tileWidth(member);
  const hostTile = await tileWidth(host);
  assert.ok(phoneTile <= 200, `the phone's tile is ${phoneTile}px wide`);
  assert.ok(hostTile > 200, `the host's tile is ${hostTile}px wide`);
  await waitForLayerRequest(member, recorder, (layer) => layer === 0);
  await waitForLayerRequest(host, recorder, (layer) => layer > 0);
  const recorderTrack = (widths) => Object.keys(widths).find((track) => track.startsWith(`m${meeting.id}-a${recorder.accountId}-`));
  await waitForVideoWidths(member.page, "the phone receives the recorder's quarter-size layer", (widths) => {
    const track = recorderTrack(widths);
    return track !== undefined && widths[track] <= 160;
  });
  // When the host's window shrinks to a phone's size, its tiles request the
  // quarter-size layer too.
  await host.page.setViewportSize({ width: 390, height: 844 });
  await waitForLayerRequest(host, recorder, (layer) => layer === 0);
  await host.page.setViewportSize({ width: 1366, height: 768 });
  await waitForLayerRequest(host, recorder, (layer) => layer > 0);

  // The recorder's hub connection drops. The server takes the recorder out
  // of the media, and the page enters again with the same devices.
  const tileParticipant = () => host.page.locator(`.room-tile[data-account="${recorder.accountId}"][data-source="camera"]`).getAttribute('data-participant');
  const before = await tileParticipant();
  const connections = recorder.hubRoutes.length;
  recorder.hubRoutes.at(-1).close({ code: 4008, reason: 'slow consumer' });
  await host.page.waitForFunction(
    ([account, old]) => {
      const tile = document.querySelector(`.room-tile[data-account="${account}"][data-source="camera"]`);
      return tile && tile.dataset.participant && tile.dataset.participant !== old;
    },
    [recorder.accountId, before],
    { timeout: MEDIA_TIMEOUT_MS },
  );
  assert.notEqual(await tileParticipant(), before);
  assert.equal(recorder.hubRoutes.length, connections + 1);
  await waitForVideoPlaying(host.page, recorder.accountId);
  await waitForVideoPlaying(recorder.page, host.accountId);
  await waitForVideoPlaying(recorder.page, member.accountId);

  // The host shares the screen as another video track, then stops.
  await host.page.getByRole('button', { name: '共享屏幕' }).click();
  for (const person of [recorder, member]) await waitForVideoPlaying(person.page, host.accountId, 'screen');
  await host.page.getByRole('button', { name: '停止共享' }).click();
  for (const person of [recorder, member]) {
    await person.page.locator(`.room-tile[data-account="${host.accountId}"][data-source="screen"]`).waitFor({ state: 'detached', timeout: MEDIA_TIMEOUT_MS });
  }

  // A motion held in the meeting, cast from the room pages.
  await host.page.getByRole('button', { name: '表决', exact: true }).click();
  await host.page.getByRole('button', { name: '发起表决' }).click();
  const dialog = host.page.getByRole('dialog');
  await dialog.getByLabel('表决事项').fill('通过全年工作总结');
  await dialog.getByRole('button', { name: '发起表决' }).click();
  for (const voter of [recorder, member]) {
    await voter.page.getByRole('button', { name: '表决', exact: true }).click();
    const vote = voter.page.getByTestId('vote').filter({ hasText: '通过全年工作总结' });
    await vote.getByRole('button', { name: '赞成' }).click();
    await vote.getByText('您已投票').waitFor();
  }
  const hostVote = host.page.getByTestId('vote').filter({ hasText: '通过全年工作总结' });
  await hostVote.getByText('已有 2 人投票').waitFor();
  await hostVote.getByRole('button', { name: '结束表决' }).click();
  const result = /赞成 2，反对 0，弃权 0（应到 3）：通过/;
  for (const person of people) {
    await person.page.getByTestId('vote').filter({ hasText: '通过全年工作总结' }).getByTestId('vote-result').getByText(result).waitFor();
  }

  // Chat reaches everyone.
  await recorder.page.getByRole('button', { name: '聊天', exact: true }).click();
  await recorder.page.getByLabel('聊天消息').fill('纪要稍后发出');
  await recorder.page.getByRole('button', { name: '发送' }).click();
  await host.page.getByRole('button', { name: '聊天', exact: true }).click();
  await host.page.getByTestId('room-chat').getByText('纪要稍后发出').waitFor();

  // The member switches to the low bandwidth mode: one mixed audio stream
  // arrives and plays, then the member switches back.
  const lowBandwidth = member.page.getByTestId('room-low-bandwidth');
  assert.equal(await lowBandwidth.getAttribute('aria-pressed'), 'false');
  await lowBandwidth.click();
  await member.page.locator('[data-testid="room-low-bandwidth"][aria-pressed="true"]').waitFor();
  const mixStart = await waitForMixedAudio(member.page, { packetsReceived: 0, totalSamplesReceived: 0 }, 1);
  await waitForMixedAudio(member.page, mixStart, 100);
  await member.page.locator('.room-audio audio[data-track$="-mix-mix"]').waitFor({ state: 'attached' });
  await lowBandwidth.click();
  await member.page.locator('[data-testid="room-low-bandwidth"][aria-pressed="false"]').waitFor();
  await member.page.locator('.room-audio audio[data-track$="-mix-mix"]').waitFor({ state: 'detached', timeout: MEDIA_TIMEOUT_MS });

  // The host records for a while; everyone sees that the meeting is recorded.
  await host.page.getByRole('button', { name: '开始录音' }).click();
  for (const person of people) {
    await person.page.getByTestId('recording-indicator').waitFor();
  }
  const hostApi = await apiSession(server.url, 'shengwei');
  const recordingGrew = async () => {
    const recordings = await hostApi('GET', `/api/meetings/${meeting.id}/recordings`);
    return recordings.length === 1 && recordings[0].size > 4000;
  };
  const deadline = Date.now() + MEDIA_TIMEOUT_MS;
  while (!(await recordingGrew())) {
    assert.ok(Date.now() < deadline, 'the recording does not grow');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  await host.page.getByRole('button', { name: '停止录音' }).click();
  for (const person of people) {
    await person.page.getByTestId('recording-indicator').waitFor({ state: 'detached' });
  }

  // The host mutes the recorder, whose page follows.
  await host.page.getByRole('button', { name: '参会人', exact: true }).click();
  await host.page.getByRole('button', { name: '将邓玉兰静音' }).click();
  await host.page.getByRole('button', { name: '解除邓玉兰静音' }).waitFor();
  await recorder.page.getByRole('button', { name: '已被主持人静音' }).waitFor();
  assert.equal(await recorder.page.getByRole('button', { name: '已被主持人静音' }).isDisabled(), true);

  // The host removes the member: the member's page loses its media, and
  // the others stop showing the member.
  await host.page.getByRole('button', { name: '移出李春花' }).click();
  await host.page.getByRole('dialog').getByRole('button', { name: '移出', exact: true }).click();
  await member.page.getByTestId('room-left').getByText('您已被主持人移出会议。').waitFor();
  assert.equal(await member.page.locator('video').count(), 0, 'the removed page shows no video');
  await recorder.page.getByRole('button', { name: '参会人', exact: true }).click();
  for (const person of [host, recorder]) {
    await person.page.locator(`.room-tile[data-account="${member.accountId}"]`).waitFor({ state: 'detached', timeout: MEDIA_TIMEOUT_MS });
    assert.equal(await person.page.getByTestId('room-participant').count(), 2);
  }
  // The recorder keeps receiving the host.
  await waitForVideoPlaying(recorder.page, host.accountId);

  // The host ends the meeting for everyone.
  await host.page.getByRole('button', { name: '结束会议' }).click();
  await host.page.getByRole('dialog').getByRole('button', { name: '结束会议' }).click();
  for (const person of [host, recorder]) {
    await person.page.getByTestId('room-left').getByText('会议已结束。').waitFor();
    assert.equal(await person.page.getByRole('button', { name: '重新进入' }).count(), 0, 'an ended meeting cannot be entered again');
  }

  // The meeting page offers the recording for download.
  await host.page.goto(`${server.url}/meetings/${meeting.id}`);
  const download = host.page.getByTestId('recordings').getByRole('link', { name: /^下载录音/ });
  await download.waitFor();
  assert.match(await download.getAttribute('href'), new RegExp(`^/api/meetings/${meeting.id}/recordings/\\d+$`));

  for (const person of people) assert.deepEqual(person.pageErrors, []);
});
