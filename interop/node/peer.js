'use strict';
// One real cluster-client 3.7.0 process for the Go interop tests.
//
//   node interop/node/peer.js <port> <role> <channel> [options-json]
//
// role is leader (isLeader: true), follower (isLeader: false) or auto
// (port competition, the default of cluster-client). options-json holds
// extra cluster-client options: heartbeatInterval, responseTimeout,
// needHeartbeat, ...
//
// The process talks to the Go test in JSON lines, {"event": name, "data":
// {...}}: events on stdout, commands on stdin. It exits when stdin closes.
//
// Events:
//   ready    {leader}             the client is ready (again, after a failover)
//   lost     {}                   the leader or the follower connection closed
//   notready {name, message, code} ready() rejected after a lost (see below)
//   data     {sub, value}         a subscription delivered value (JSON-safe)
//   result   {id, ok, value|error} the answer to an invoke (value is a tag)
//   info     {id, leader, ready}  the answer to info
//   report   {id, sub, values}    the answer to report (quiet subscriptions)
//   rc       {op, ...}            the real client was called (only in the leader)
//   error    {name, message, code} the client emitted an error event
//   log      {level, text}        cluster-client logged something
//   closed   {}                   the client closed (stdin ended)
//   fatal    {name, message}      the client failed to start
//
// Commands:
//   subscribe   {sub, reg, quiet}  subscribe(reg); quiet collects the `last`
//                                  of each value for report instead of
//                                  printing a data event
//   unsubscribe {sub, reg}         unSubscribe(reg, the listener of sub)
//   publish     {reg}
//   invoke      {id, method, args, oneway, raw}  args are tags; oneway
//               calls the method delegated as invokeOneway (note); raw
//               sends any method name, even one the class does not have
//   info        {id}
//   report      {id, sub}
//
// Values that cross stdin and stdout are "tags", which keep the JavaScript
// type: {t: string|int|float|bool|null|undefined|buffer|date|array|object|
// error, v: ...}. The Go side has the same vocabulary (interop/tags_test.go).

const EventEmitter = require('events');
const readline = require('readline');
const util = require('util');
const cluster = require('cluster-client');
const symbols = require('cluster-client/lib/symbol');

const port = Number(process.argv[2]);
const role = process.argv[3];
const channel = process.argv[4];
const extra = process.argv[5] ? JSON.parse(process.argv[5]) : {};

function emit(event, data) {
  process.stdout.write(JSON.stringify({ event, data: data || {} }) + '\n');
}

function tag(v) {
  if (v === undefined) return { t: 'undefined' };
  if (v === null) return { t: 'null' };
  if (Buffer.isBuffer(v)) return { t: 'buffer', v: v.toString('base64') };
  if (v instanceof Date) return { t: 'date', v: v.getTime() };
  if (Array.isArray(v)) return { t: 'array', v: v.map(tag) };
  if (v instanceof Error) {
    return { t: 'error', name: v.name, message: v.message, code: v.code === undefined ? null : v.code };
  }
  switch (typeof v) {
    case 'string': return { t: 'string', v };
    case 'number': return Number.isInteger(v) ? { t: 'int', v } : { t: 'float', v };
    case 'boolean': return { t: 'bool', v };
    case 'object': {
      const o = {};
      for (const k of Object.keys(v)) o[k] = tag(v[k]);
      return { t: 'object', v: o };
    }
    default: return { t: typeof v };
  }
}

function untag(x) {
  switch (x.t) {
    case 'undefined': return undefined;
    case 'null': return null;
    case 'buffer': return Buffer.from(x.v, 'base64');
    case 'date': return new Date(x.v);
    case 'array': return x.v.map(untag);
    case 'object': {
      const o = {};
      for (const k of Object.keys(x.v)) o[k] = untag(x.v[k]);
      return o;
    }
    case 'string': case 'int': case 'float': case 'bool': return x.v;
    default: throw new Error(`untag: unknown tag ${JSON.stringify(x)}`);
  }
}

// The real client, the same as the Go one (interop/realclient_test.go):
// per dataId a count of publications and the last value; subscribe pushes
// {dataId, n, last} at once and after every publish of that dataId.
class DataClient extends EventEmitter {
  constructor() {
    super();
    this._state = new Map(); // dataId -> {n, last}
    this._listeners = new Map(); // dataId -> [listener]
    emit('rc', { op: 'create' });
  }

  _current(dataId) {
    const s = this._state.get(dataId) || { n: 0, last: null };
    return { dataId, n: s.n, last: s.last };
  }

  subscribe(reg, listener) {
    emit('rc', { op: 'subscribe', reg });
    const list = this._listeners.get(reg.dataId) || [];
    list.push(listener);
    this._listeners.set(reg.dataId, list);
    process.nextTick(() => listener(this._current(reg.dataId)));
  }

  unSubscribe(reg, listener) {
    emit('rc', { op: 'unSubscribe', reg });
    const list = (this._listeners.get(reg.dataId) || []).filter(l => listener && l !== listener);
    this._listeners.set(reg.dataId, list);
  }

  publish(reg) {
    emit('rc', { op: 'publish', reg });
    const s = this._state.get(reg.dataId) || { n: 0, last: null };
    s.n++;
    s.last = reg.value;
    this._state.set(reg.dataId, s);
    for (const listener of this._listeners.get(reg.dataId) || []) {
      listener(this._current(reg.dataId));
    }
  }

  // The leader appends its callback to the arguments of every invoke, so
  // the methods below never look at arguments beyond their own.
  async echo(x) { return x; }
  async describe(x) { return JSON.stringify(tag(x)); }
  async build(t) { return untag(JSON.parse(t)); }
  async add(a, b) { return a + b; }

  async fail(name, message, code) {
    const err = new Error(message);
    err.name = name;
    err.code = code;
    throw err;
  }

  async sleep(ms) {
    await new Promise(resolve => setTimeout(resolve, ms));
    return `slept ${ms}ms`;
  }

  note(x) { emit('rc', { op: 'note', value: tag(x) }); }

  close() { emit('rc', { op: 'close' }); }
}

const logger = {};
for (const level of [ 'debug', 'info', 'warn', 'error' ]) {
  logger[level] = (...args) => emit('log', { level, text: util.format(...args) });
}

const options = Object.assign({ port, name: channel, logger }, extra);
if (role === 'leader') options.isLeader = true;
else if (role === 'follower') options.isLeader = false;
else if (role !== 'auto') throw new Error(`role must be leader, follower or auto, not ${role}`);

const client = cluster(DataClient, options).delegate('note', 'invokeOneway').create();
const subs = new Map(); // sub -> {listener, values}

function errorFields(err) {
  return {
    name: err.name, message: err.message, code: err.code === undefined ? null : err.code,
    stack: typeof err.stack === 'string' ? err.stack : null,
  };
}

const commands = {
  subscribe({ sub, reg, quiet }) {
    const entry = { values: [] };
    entry.listener = value => {
      if (quiet) entry.values.push(value.last);
      else emit('data', { sub, value });
    };
    subs.set(sub, entry);
    client.subscribe(reg, entry.listener);
  },
  unsubscribe({ sub, reg }) {
    client.unSubscribe(reg, subs.get(sub).listener);
  },
  publish({ reg }) {
    client.publish(reg);
  },
  invoke({ id, method, args, oneway, raw }) {
    const values = (args || []).map(untag);
    if (oneway) {
      client[method](...values);
      emit('result', { id, ok: true, oneway: true });
      return;
    }
    const call = raw ?
      new Promise((resolve, reject) => client[symbols.invoke](method, values, (err, v) => (err ? reject(err) : resolve(v)))) :
      client[method](...values);
    call.then(
      v => emit('result', { id, ok: true, value: tag(v) }),
      err => emit('result', { id, ok: false, error: errorFields(err) }));
  },
  info({ id }) {
    emit('info', { id, leader: !!client.isClusterClientLeader });
  },
  report({ id, sub }) {
    emit('report', { id, sub, values: subs.get(sub).values });
  },
};

client.on('error', err => emit('error', errorFields(err)));
// The wrapper re-emits its inner client's close: the connection to the
// leader (or the leader's listener) is gone and cluster-client elects
// again; ready follows when it has a new role.
//
// cluster-client may fail a re-election attempt (its new follower reached
// the dead leader's listener before the kernel closed it, and was reset)
// and succeed with the next. The failed attempt leaves ready() rejecting
// with that attempt's error until the next one succeeds, so the error is
// reported (notready) and ready() asked again until it resolves.
function awaitReady(reported) {
  client.ready().then(
    () => emit('ready', { leader: !!client.isClusterClientLeader }),
    err => {
      if (!reported) emit('notready', errorFields(err));
      setTimeout(() => awaitReady(true), 50);
    });
}
client.on('close', () => {
  emit('lost', {});
  awaitReady(false);
});

async function main() {
  await client.ready();
  emit('ready', { leader: !!client.isClusterClientLeader });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', line => {
    const { event, data } = JSON.parse(line);
    const command = commands[event];
    if (!command) throw new Error(`unknown command ${event}`);
    command(data || {});
  });
  rl.on('close', async () => {
    setTimeout(() => process.exit(2), 5000).unref();
    await client.close();
    emit('closed', {});
    process.exit(0);
  });
}

main().catch(err => {
  emit('fatal', errorFields(err));
  process.exit(1);
});
