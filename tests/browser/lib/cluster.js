// Several `dangwu serve` nodes for one browser test: a PostgreSQL schema, a
// NATS subject prefix and a shared files directory of their own, removed
// after the test together with the NATS streams the nodes created.
//
// Needs PostgreSQL on 127.0.0.1:5432 (database `test`, trust
// authentication, or the URL in DANGWU_TEST_PG) and NATS with JetStream on
// 127.0.0.1:4222 (or DANGWU_TEST_NATS).

import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const PG_URL = process.env.DANGWU_TEST_PG || 'postgres://postgres@127.0.0.1:5432/test';
const NATS = new URL(process.env.DANGWU_TEST_NATS || 'nats://127.0.0.1:4222');

function psql(sql) {
  const env = { ...process.env, PGOPTIONS: '--client-min-messages=warning' };
  execFileSync('psql', [PG_URL, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { env });
}

/** Deletes JetStream streams through the NATS protocol and returns the replies. */
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

/**
 * Creates the schema, prefix and shared directory of one test's nodes, named
 * after `label`, and registers their removal after test `t`. Returns
 * `args`, the `dangwu serve` arguments every node of the test takes, and
 * `nodes`, where the test puts each node it starts so that the cleanup stops
 * it. `log` receives the cleanup's progress.
 */
export async function clusterSetup(t, label, { log = () => {} } = {}) {
  const suffix = `${process.pid}${Date.now()}`;
  const schema = `browser_${label}_${suffix}`;
  const prefix = `browser-${label}-${suffix}`;
  psql(`CREATE SCHEMA ${schema}`);
  const shared = await mkdtemp(path.join(os.tmpdir(), `dangwu-${label}-`));
  const nodes = [];
  // The nodes stop first, so that none creates the NATS streams again.
  t.after(async () => {
    log('cleanup: stopping nodes');
    for (const node of nodes.reverse()) await node.stop();
    psql(`DROP SCHEMA ${schema} CASCADE`);
    await rm(shared, { recursive: true, force: true });
    const stem = prefix.toUpperCase();
    await deleteStreams([`${stem}_HUB`, `KV_${stem}_PRESENCE`, `KV_${stem}_PLACEMENT`]);
    log('cleanup: done');
  });
  const args = [
    '--database-url', `${PG_URL}?options=-c%20search_path%3D${schema}`,
    '--nats-url', NATS.href,
    '--nats-prefix', prefix,
    '--files-dir', path.join(shared, 'files'),
    '--audit-key-file', path.join(shared, 'audit-signing-key.pem'),
    '--media-shards', '1',
  ];
  return { args, nodes };
}
