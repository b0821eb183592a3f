import { MEDIA_ARGS, apiSession, launchBrowser, login, startServer } from './lib/harness.js';
const server = await startServer();
try {
  const api = await apiSession(server.url, 'shengwei');
  const meeting = (await api('GET', '/api/meetings')).items.find((item) => item.title === '十二月支委会');
  const people = [];
  for (const [user, viewport] of [['shengwei', { width: 1366, height: 768 }], ['dy026', { width: 390, height: 844 }]]) {
    const chrome = await launchBrowser({ viewport, args: MEDIA_ARGS });
    const page = chrome.context.pages()[0];
    await login(page, server.url, user);
    await page.getByRole('link', { name: '会议', exact: true }).waitFor();
    await page.goto(`${server.url}/meetings/${meeting.id}/room`);
    await page.waitForFunction(() => document.querySelector('.room-preview')?.videoWidth > 0, null, { timeout: 60000 });
    await page.screenshot({ path: `/tmp/roomshot/${user}-check.png` });
    await page.getByRole('button', { name: '进入会议' }).click();
    await page.getByTestId('room').waitFor();
    people.push({ chrome, page, user });
  }
  await new Promise((r) => setTimeout(r, 4000));
  for (const p of people) await p.page.screenshot({ path: `/tmp/roomshot/${p.user}-room.png`, fullPage: true });
  await people[0].page.getByRole('button', { name: '演讲者视图' }).click();
  await people[0].page.getByRole('button', { name: '表决', exact: true }).click();
  await new Promise((r) => setTimeout(r, 1500));
  await people[0].page.screenshot({ path: `/tmp/roomshot/speaker.png` });
  for (const p of people) await p.chrome.close();
} finally {
  await server.stop();
}
