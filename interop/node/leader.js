'use strict';
// A real cluster-client 3.7.0 leader for the Go interop tests.
//
//   node interop/node/leader.js <port> <channel>
//
// It leads channel <channel> on 127.0.0.1:<port> around a tiny real client:
// echo(x) returns x, add(a, b) returns a + b, fail(message) throws an Error
// with code E_FAIL, subscribe(reg, listener) pushes {dataId, values} for
// reg.dataId at once and after every publish(reg) that adds reg.value to it.
// Every event is printed on stdout as one JSON line. The process exits when
// its stdin closes (the Go test's way to stop it).

const EventEmitter = require('events');
const cluster = require('cluster-client');

const port = Number(process.argv[2]);
const channel = process.argv[3] || 'DataClient';

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields)) + '\n');
}

// A plain EventEmitter without ready(): cluster-client counts it ready at once.
class DataClient extends EventEmitter {
  constructor() {
    super();
    this._values = new Map(); // dataId -> [value]
    this._listeners = new Map(); // dataId -> [listener]
  }

  _current(dataId) {
    return { dataId, values: (this._values.get(dataId) || []).slice() };
  }

  subscribe(reg, listener) {
    emit('subscribe', { reg });
    const list = this._listeners.get(reg.dataId) || [];
    list.push(listener);
    this._listeners.set(reg.dataId, list);
    process.nextTick(() => listener(this._current(reg.dataId)));
  }

  unSubscribe(reg, listener) {
    emit('unSubscribe', { reg });
    const list = (this._listeners.get(reg.dataId) || []).filter(l => listener && l !== listener);
    this._listeners.set(reg.dataId, list);
  }

  publish(reg) {
    emit('publish', { reg });
    const values = this._values.get(reg.dataId) || [];
    values.push(reg.value);
    this._values.set(reg.dataId, values);
    for (const listener of this._listeners.get(reg.dataId) || []) {
      listener(this._current(reg.dataId));
    }
  }

  async echo(x) {
    emit('invoke', { method: 'echo' });
    return x;
  }

  async add(a, b) {
    emit('invoke', { method: 'add', args: [ a, b ] });
    return a + b;
  }

  async fail(message) {
    emit('invoke', { method: 'fail', args: [ message ] });
    const err = new Error(message);
    err.code = 'E_FAIL';
    throw err;
  }

  close() {}
}

const logger = {};
for (const level of [ 'debug', 'info', 'warn', 'error' ]) {
  logger[level] = (...args) => emit('log', { level, text: args.map(String).join(' ') });
}

async function main() {
  const client = cluster(DataClient, { port, name: channel, isLeader: true, logger }).create();
  client.on('error', err => emit('error', { name: err.name, message: err.message }));
  await client.ready();
  emit('ready', { port, channel, leader: client.isClusterClientLeader });

  process.stdin.on('end', async () => {
    await client.close();
    emit('closed', {});
    process.exit(0);
  });
  process.stdin.resume();
}

main().catch(err => {
  emit('fatal', { name: err.name, message: err.message });
  process.exit(1);
});
