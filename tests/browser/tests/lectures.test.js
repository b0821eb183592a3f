// A live lecture in headless Chromium with fake devices and real WebRTC to
// the server's media engine on loopback: the branch secretary lectures and
// two members of the branch watch receive-only. Both viewers decode the
// lecturer's video, one asks a question that the lecturer sees, both
// answer the lecturer's poll and see the result, and after the lecturer
// ends the lecture each viewer's page shows the credited hours.
//
// Demo accounts of 东城区机关第一党支部: zhibu (its secretary, the
// lecturer), dangyuan and another member of the branch (the viewers).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MEDIA_ARGS, apiSession, launchBrowser, login, startServer } from '../lib/harness.js';

const BRANCH = '东城区机关第一党支部';

/** Generous wait for media on a busy machine. */
const MEDIA_TIMEOUT_MS = 90_000;

/** Time the viewers watch before the lecture ends, in milliseconds. */
const WATCH_MS = 20_000;

async function openPerson(t, server, username) {
  const chrome = await launchBrowser({ args: MEDIA_ARGS });
  t.after(() => chrome.close());
  const page = chrome.context.pages()[0] || (await chrome.context.newPage());
  page.setDefaultTimeout(30_000);
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await login(page, server.url, username);
  await page.getByRole('link', { name: '学习', exact: true }).waitFor();
  return { page, pageErrors };
}

/** Waits until some video on the lecture stage shows new frames. */
async function waitForLecturerVideo(page) {
  const frames = () =>
    page.evaluate(() => {
      const videos = [...document.querySelectorAll('[data-testid="lecture-video"]')];
      return Math.max(-1, ...videos.filter((v) => v.srcObject && v.videoWidth > 0).map((v) => v.getVideoPlaybackQuality().totalVideoFrames));
    });
  const deadline = Date.now() + MEDIA_TIMEOUT_MS;
  let first = -1;
  while (Date.now() < deadline) {
    const shown = await frames();
    if (shown > 0 && first < 0) first = shown;
    if (first > 0 && shown > first + 10) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the lecturer's video did not play; frames ${await frames()}`);
}

test('live lecture with two viewers', { timeout: 600_000 }, async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const secretary = await apiSession(server.url, 'zhibu');
  const admin = await apiSession(server.url, 'sysadmin');

  // The lecture is added to a course of the branch; its meeting is scheduled with it.
  const me = await secretary('GET', '/api/auth/me');
  const course = (await secretary('GET', '/api/learning/courses')).find((c) => c.org_name === BRANCH && c.can_manage);
  const org = (await secretary('GET', '/api/orgs')).find((o) => o.name === BRANCH);
  const members = (await secretary('GET', `/api/orgs/${org.id}/members?limit=100`)).items;
  const others = members.filter((m) => m.id !== me.account.member_id);
  const accounts = [];
  for (const member of others) {
    const found = (await admin('GET', `/api/accounts?q=${encodeURIComponent(member.name)}`)).items;
    const account = found.find((a) => a.member_id === member.id && !a.disabled);
    if (account && account.username !== 'zhibu') accounts.push({ member, username: account.username });
  }
  const viewerA = accounts.find((a) => a.username === 'dangyuan');
  assert.ok(viewerA, 'the account dangyuan in the branch');
  const lecture = await secretary('POST', `/api/learning/courses/${course.id}/lectures`, {
    title: '学习新党章',
    starts_at: Date.now() + 60_000,
    duration_s: 600,
    lecturer_member: me.account.member_id,
    recorder_member: viewerA.member.id,
  });
  // The second viewer is a member of the branch without an office there.
  let viewerB = null;
  for (const candidate of accounts) {
    if (candidate === viewerA) continue;
    const view = await (await apiSession(server.url, candidate.username))('GET', `/api/learning/lectures/${lecture.lesson_id}`);
    if (view.role === 'viewer') {
      viewerB = candidate;
      break;
    }
  }
  assert.ok(viewerB, 'a second member of the branch who is a viewer');

  const lecturer = await openPerson(t, server, 'zhibu');
  const first = await openPerson(t, server, viewerA.username);
  const second = await openPerson(t, server, viewerB.username);
  const viewers = [first, second];
  const path = `${server.url}/learning/lectures/${lecture.lesson_id}`;

  // The lecturer starts presenting; the viewers enter without a lobby.
  await lecturer.page.goto(path);
  await lecturer.page.getByRole('button', { name: '开始主讲' }).click();
  await lecturer.page.getByTestId('lecture-state').filter({ hasText: '直播中' }).waitFor({ timeout: MEDIA_TIMEOUT_MS });
  for (const viewer of viewers) {
    await viewer.page.goto(path);
    await viewer.page.getByText('我的身份：听众').waitFor();
    await viewer.page.getByRole('button', { name: '进入直播' }).click();
  }
  for (const viewer of viewers) {
    await waitForLecturerVideo(viewer.page);
    await viewer.page.getByTestId('study-status').filter({ hasText: '正在计时' }).waitFor({ timeout: MEDIA_TIMEOUT_MS });
  }
  const watchStarted = Date.now();
  await lecturer.page.getByTestId('lecture-stats').filter({ hasText: '2 人在线观看' }).waitFor({ timeout: MEDIA_TIMEOUT_MS });

  // A question reaches the lecturer's queue.
  await first.page.getByTestId('lecture-question-input').fill('支部如何落实三会一课？');
  await first.page.getByTestId('lecture-ask').click();
  await lecturer.page.getByTestId('lecture-questions').getByText('支部如何落实三会一课？').waitFor();
  await second.page.waitForTimeout(500);
  assert.equal(await second.page.getByTestId('lecture-questions').getByText('支部如何落实三会一课？').count(), 0);

  // The lecturer opens a poll, and each viewer answers once and gets the result.
  await lecturer.page.getByLabel('投票问题').fill('本次党课是否清楚？');
  await lecturer.page.getByLabel('选项').fill('清楚\n不清楚');
  await lecturer.page.getByRole('button', { name: '发起投票' }).click();
  for (const viewer of viewers) {
    await viewer.page.getByTestId('lecture-poll-option').filter({ hasText: '清楚' }).first().click();
  }
  await lecturer.page.getByTestId('lecture-poll-total').filter({ hasText: '共 2 人投票' }).waitFor();
  for (const viewer of viewers) {
    await viewer.page.getByTestId('lecture-poll-total').filter({ hasText: '共 2 人投票' }).waitFor();
    assert.equal(await viewer.page.getByTestId('lecture-poll-option').count(), 0);
  }

  // After watching a while, the lecturer ends the lecture and the hours appear.
  const rest = WATCH_MS - (Date.now() - watchStarted);
  if (rest > 0) await lecturer.page.waitForTimeout(rest);
  await lecturer.page.getByTestId('lecture-end').click();
  for (const viewer of viewers) {
    await viewer.page.getByTestId('lecture-credited').filter({ hasText: '已计入学时' }).waitFor({ timeout: MEDIA_TIMEOUT_MS });
  }
  const ledger = await (await apiSession(server.url, viewerA.username))('GET', '/api/learning/me');
  assert.ok(
    ledger.entries.some((entry) => entry.source === 'lesson' && entry.course_id === course.id),
    JSON.stringify(ledger.entries),
  );
  for (const person of [lecturer, ...viewers]) assert.deepEqual(person.pageErrors, []);
});
