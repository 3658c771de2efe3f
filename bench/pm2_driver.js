// Drives pm2 through its programmatic API for bench/compare.py: one JSON command per stdin line,
// one JSON answer per stdout line. `node pm2_driver.js loop NAME COUNT DEADLINE_S` is a throughput client.
'use strict';
const readline = require('readline');
const pm2lib = require('pm2');

const pm2 = new pm2lib.custom({ daemon_mode: true });

function call(fn, ...args) {
  return new Promise((resolve, reject) =>
    fn.call(pm2, ...args, (err, res) => (err ? reject(err instanceof Error ? err : new Error(JSON.stringify(err))) : resolve(res))));
}

function app(name, autorestart) {
  // Fork mode on a binary: pm2 spawns `sleep` itself, no node wrapper; output discarded like the others
  // (pm2 knows /dev/null as "no log"). The pid file stays in PM2_HOME: pm2 deletes it when the process
  // goes, so it must never be pointed at a shared path.
  return {
    name, script: 'sleep', args: ['3600'], interpreter: 'none', exec_mode: 'fork',
    autorestart, out_file: '/dev/null', error_file: '/dev/null',
  };
}

async function describePid(name) {
  const list = await call(pm2.describe, name);
  if (!list.length) throw new Error(`pm2 does not know ${name}`);
  return list[0].pid || 0;
}

const handlers = {
  async connect() {
    await call(pm2.connect);
    return { version: require('pm2/package.json').version };
  },
  async start({ names, autorestart }) {
    // The ecosystem form: one call for all apps, as `pm2 start ecosystem.config.js` does.
    await call(pm2.start, { apps: names.map((n) => app(n, !!autorestart)) });
    return {};
  },
  async pid({ name }) {
    return { pid: await describePid(name) };
  },
  async status({ name, count, deadline_s }) {
    await describePid(name);
    const out = [];
    const end = Date.now() + deadline_s * 1000;
    for (let i = 0; i < count && Date.now() < end; i++) {
      const t0 = process.hrtime.bigint();
      await call(pm2.describe, name);
      out.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return { latencies: out };
  },
  async stop({ names }) {
    if (names === 'all') await call(pm2.stop, 'all');
    else for (const n of names) await call(pm2.stop, n);
    return {};
  },
  async delete({ names }) {
    if (names === 'all') await call(pm2.delete, 'all');
    else for (const n of names) await call(pm2.delete, n);
    return {};
  },
  async daemon_pid() {
    const fs = require('fs');
    const home = process.env.PM2_HOME;
    return { pid: parseInt(fs.readFileSync(`${home}/pm2.pid`, 'utf8'), 10) };
  },
};

async function serve() {
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    let reply;
    try {
      reply = { ok: true, ...(await handlers[req.cmd](req)) };
    } catch (e) {
      reply = { ok: false, error: String(e && e.message ? e.message : e) };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
  // stdin closed: let go of the daemon's sockets, leave the daemon to the harness.
  pm2.disconnect();
  process.exit(0);
}

async function loop(name, count, deadlineS) {
  await call(pm2.connect);
  await describePid(name);
  process.stdout.write('ready\n');
  // Wait for the harness's go (one line on stdin) so every client starts together.
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const t0 = Date.now();
  let done = 0;
  while (done < count && Date.now() - t0 < deadlineS * 1000) {
    await call(pm2.describe, name);
    done++;
  }
  const t1 = Date.now();
  process.stdout.write(JSON.stringify({ done, t0: t0 / 1000, t1: t1 / 1000 }) + '\n');
  pm2.disconnect();
  process.exit(0);
}

if (process.argv[2] === 'loop') {
  loop(process.argv[3], parseInt(process.argv[4], 10), parseFloat(process.argv[5])).catch((e) => {
    process.stderr.write(String(e) + '\n');
    process.exit(1);
  });
} else {
  serve();
}
