'use strict';
// A member of a Node cluster-client 3.7.0 cluster for clusterbench.
//
//   NODE_PATH=<dir with cluster-client> node bench.js '{"port":P,"channel":C,"mode":M}'
//
// mode is "auto" (compete for the port), "leader" (isLeader: true) or
// "follower" (isLeader: false). It speaks clusterbench's line protocol and
// answers the same requests as the Go member (internal/clusterbench/member.go):
// one JSON event per line, {"event","data"}; a request per stdin line, the
// event named after the command, and one reply per stdout line,
// {"event":"ok","data"} or {"event":"error","data":message}; the first
// reply says it is ready. It exits when stdin closes. Nothing else goes to
// stdout.
//
// Timestamps are process.hrtime.bigint(), CLOCK_MONOTONIC on Linux, the
// same host-wide clock the Go side reads.

const EventEmitter = require('events');
const readline = require('readline');
const cluster = require('cluster-client');

const args = JSON.parse(process.argv[2]);
const mono = () => process.hrtime.bigint();
const nowNs = () => Number(mono());

function write(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}
function fail(err) {
  write({ event: 'error', data: String((err && err.stack) || err) });
}

// The real client: echo, ping (the leader's pid), and subscriptions keyed
// by dataId where publish(reg) hands reg to the subscribers of reg.dataId.
class BenchClient extends EventEmitter {
  constructor() {
    super();
    this._listeners = new Map();
  }
  subscribe(reg, listener) {
    const list = this._listeners.get(reg.dataId) || [];
    list.push(listener);
    this._listeners.set(reg.dataId, list);
  }
  unSubscribe(reg, listener) {
    const list = this._listeners.get(reg.dataId) || [];
    this._listeners.set(reg.dataId, listener ? list.filter(l => l !== listener) : []);
  }
  publish(reg) {
    for (const listener of this._listeners.get(reg.dataId) || []) {
      listener(reg);
    }
  }
  async echo(x) {
    return x;
  }
  async ping() {
    return process.pid;
  }
  close() {}
}

// cluster-client's default logger writes to stdout, which is the protocol's.
const logger = {};
for (const level of [ 'debug', 'info', 'warn', 'error' ]) {
  logger[level] = (...a) => {
    if (level !== 'debug' && level !== 'info') process.stderr.write(`[${level}] ${a.map(String).join(' ')}\n`);
  };
}

const options = { port: args.port, name: args.channel, logger };
if (args.mode === 'leader') options.isLeader = true;
if (args.mode === 'follower') options.isLeader = false;
const client = cluster(BenchClient, options).delegate('echo').delegate('ping').create();
client.on('error', err => process.stderr.write(`client error: ${err.stack || err}\n`));

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const tick = () => new Promise(resolve => setImmediate(resolve));

// waitUntil resolves when the monotonic clock reaches t (ns): a timer for
// most of the wait, then the event loop's turns for the last millisecond.
async function waitUntil(t) {
  const ms = Math.floor((t - nowNs()) / 1e6) - 1;
  if (ms > 0) await sleep(ms);
  while (nowNs() < t) await tick();
}

function benchArg(kind, size) {
  if (kind === 'bytes') return Buffer.alloc(size, 'x');
  if (kind === 'string') return 'x'.repeat(size);
  throw new Error(`unknown argument kind ${kind}`);
}

async function echoOnce(arg, size) {
  const res = await client.echo(arg);
  if (!res || res.length !== size) {
    throw new Error(`echo returned ${res && res.length} bytes for ${size}`);
  }
}

const received = new Map(); // seq -> latency ns

const commands = {
  async seq({ kind, size, duration_ns, warmup_ns }) {
    const arg = benchArg(kind, size);
    const warmEnd = nowNs() + warmup_ns;
    while (nowNs() < warmEnd) await echoOnce(arg, size);
    const samples = [];
    const end = nowNs() + duration_ns;
    for (;;) {
      const start = mono();
      await echoOnce(arg, size);
      const done = mono();
      samples.push(Number(done - start));
      if (Number(done) > end) break;
    }
    return { samples };
  },

  async load({ kind, size, inflight, start_ns, duration_ns }) {
    const arg = benchArg(kind, size);
    await waitUntil(start_ns);
    const end = start_ns + duration_ns;
    let ops = 0;
    let failed = 0;
    let error;
    const worker = async () => {
      while (nowNs() < end) {
        try {
          await echoOnce(arg, size);
        } catch (err) {
          failed++;
          if (error === undefined) error = String(err);
          continue;
        }
        ops++;
      }
    };
    await Promise.all(Array.from({ length: Math.max(inflight, 1) }, worker));
    return { ops, elapsed_ns: nowNs() - start_ns, failed, error };
  },

  async subscribe({ data_id }) {
    client.subscribe({ dataId: data_id }, value => {
      const lat = Number(mono() - BigInt(value.t));
      if (!received.has(value.seq)) received.set(value.seq, lat);
    });
    return {};
  },

  async collect({ from }) {
    const out = { seq: [], lat_ns: [] };
    for (const [ seq, lat ] of received) {
      if (seq < from) {
        received.delete(seq);
        continue;
      }
      out.seq.push(seq);
      out.lat_ns.push(lat);
    }
    return out;
  },

  async publish({ data_id, first, count, interval_ns, start_ns }) {
    for (let i = 0; i < count; i++) {
      await waitUntil(start_ns + i * interval_ns);
      client.publish({ dataId: data_id, seq: first + i, t: String(mono()) });
    }
    return {};
  },

  async probe({ dead_pid, timeout_ns }) {
    const end = nowNs() + timeout_ns;
    let attempts = 0;
    let last;
    while (nowNs() < end) {
      attempts++;
      try {
        const pid = await client.ping();
        if (pid !== dead_pid) return { at_ns: nowNs(), pid, attempts };
      } catch (err) {
        last = err;
      }
      await tick();
    }
    throw new Error(`no leader other than pid ${dead_pid} answered in ${timeout_ns / 1e6} ms (${attempts} attempts): ${last}`);
  },

  async stats() {
    return { pid: process.pid, leader: client.isClusterClientLeader, followers: 0 };
  },

  async mem() {
    return { rss_bytes: process.memoryUsage().rss, go_bytes: 0, goroutines: 0 };
  },
};

async function main() {
  await client.ready();
  write({ event: 'ok', data: { pid: process.pid, leader: client.isClusterClientLeader } });
  let queue = Promise.resolve();
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', line => {
    queue = queue.then(async () => {
      let req;
      try {
        req = JSON.parse(line);
        const cmd = commands[req.event];
        if (!cmd) throw new Error(`unknown command ${req.event}`);
        write({ event: 'ok', data: await cmd(req.data || {}) });
      } catch (err) {
        fail(err);
      }
    });
  });
  rl.on('close', () => process.exit(0));
}

main().catch(err => {
  fail(err);
  process.exit(1);
});
