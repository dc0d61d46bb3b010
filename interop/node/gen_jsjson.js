'use strict';
// Generates protocol/testdata/jsjson.json: how V8 prints numbers, escapes
// strings in JSON.stringify, and re-encodes JSON texts after JSON.parse.
// The Go conn-object encoder and NormalizeJSON are tested against it, so the
// test needs no Node at run time. Deterministic (seeded PRNG).
//
//   node interop/node/gen_jsjson.js > protocol/testdata/jsjson.json

let seed = 0x2545f491;
function rnd() { // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = n => Math.floor(rnd() * n);
const pick = a => a[int(a.length)];

// ---- numbers: [float64 bits as hex, String(x)]
const numbers = [];
function addNumber(x) {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  let bits = '';
  for (let i = 0; i < 8; i++) bits += dv.getUint8(i).toString(16).padStart(2, '0');
  numbers.push([bits, String(x)]);
}
[0, -0, 1, -1, 0.1, 0.2, 0.1 + 0.2, 1 / 3, 2 / 3, 1e21, 1e21 - 65536, 999999999999999900000, 1e-6, 1e-7, 1.5e-7,
  123e-20, 5e-324, Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, 2 ** 53, 2 ** 53 + 2, 2 ** 64,
  2 ** 60, 1e100, 1.7976931348623157e308, 4.35, 0.000001234, 0.0000001234, 100, 1e20, 123456789012345680000,
  1.2345678901234567e-300, 9.999999999999999e20, 1e-5, 0.5, 25, 1.25e+21].forEach(addNumber);
for (let i = 0; i < 1500; i++) {
  const dv = new DataView(new ArrayBuffer(8));
  for (let j = 0; j < 8; j++) dv.setUint8(j, int(256));
  const x = dv.getFloat64(0);
  if (Number.isFinite(x)) addNumber(x);
}
for (let i = 0; i < 500; i++) { // decimal-looking values of every magnitude
  addNumber(Number((rnd() * 10).toFixed(int(17)) + 'e' + (int(60) - 30)));
  addNumber(int(2 ** 31) * (rnd() < 0.5 ? -1 : 1));
}

// ---- strings: [WTF-8 hex of the JavaScript string, hex of JSON.stringify(s) as UTF-8]
function wtf8(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | c >> 6, 0x80 | c & 63);
    else if (c < 0x10000) out.push(0xe0 | c >> 12, 0x80 | c >> 6 & 63, 0x80 | c & 63);
    else out.push(0xf0 | c >> 18, 0x80 | c >> 12 & 63, 0x80 | c >> 6 & 63, 0x80 | c & 63);
  }
  return Buffer.from(out).toString('hex');
}
const hexUtf8 = s => Buffer.from(s, 'utf8').toString('hex');
const strings = [];
const addString = s => strings.push([wtf8(s), hexUtf8(JSON.stringify(s))]);
let all = '';
for (let c = 0; c < 0x80; c++) { addString(String.fromCharCode(c)); all += String.fromCharCode(c); }
addString(all);
['', '<script>&amp;</script>', '\u2028\u2029', '\u007f\u0080\u00ff', 'é漢字', '\ud83d\ude00', '\ud800', '\udfff',
  'a\ud800b', '\udc00\ud800', '\ud83d\ude00\ud83d', '$$inner$$__{"dataId":"x"}', '\ufeff', '\ufffd'].forEach(addString);
const units = [0x00, 0x08, 0x09, 0x0a, 0x1f, 0x20, 0x22, 0x2f, 0x3c, 0x5c, 0x7f, 0x80, 0x7ff, 0x800, 0x2028,
  0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xfeff, 0xfffd, 0xffff];
for (let i = 0; i < 500; i++) {
  let s = '';
  const n = int(12);
  for (let j = 0; j < n; j++) {
    const r = rnd();
    if (r < 0.4) s += String.fromCharCode(0x20 + int(0x5f));
    else if (r < 0.7) s += String.fromCharCode(pick(units));
    else if (r < 0.85) s += String.fromCodePoint(0x10000 + int(0x100000));
    else s += String.fromCharCode(int(0x10000));
  }
  addString(s);
}

// ---- normalize: [hex of input text, hex of JSON.stringify(JSON.parse(input)) or null if JSON.parse throws]
const normalize = [];
function addText(buf) {
  if (typeof buf === 'string') buf = Buffer.from(buf, 'utf8');
  let out = null;
  try { out = hexUtf8(JSON.stringify(JSON.parse(buf))); } catch (e) { out = null; }
  normalize.push([buf.toString('hex'), out]);
}
[
  '{}', '[]', '""', '0', '-0', '1.0', '1e2', '1E+2', '1e-7', '0.000001', '1e400', '-1e400', '1e-400',
  '12345678901234567890', '9007199254740993', '0.1', '100000000000000000000000', ' { "a" : [ 1 , 2 ] } ',
  '{"a":1,"a":2}', '{"b":1,"a":2,"b":3}', '{"b":1,"2":2,"1":3,"a":4,"0":5}', '{"01":1,"1":2,"-1":3,"1.5":4}',
  '{"4294967294":1,"4294967295":2,"0":3}', '{"__proto__":{"x":1},"y":2}', '{"dataId":"com.example.DemoService:1.0"}',
  '"\\u00e9\\/\\b\\f\\n\\r\\t\\"\\\\"', '"\\u2028\\u2029<>&"', '"\\ud83d\\ude00"', '"\\ud800"', '"\\ud800\\u0041"',
  '"\\udc00\\ud800"', '"\\uD83D\\uDE00"', '"\\u0000\\u001F\\u007f"', '[1,[2,[3,{"a":[]}]]]', 'true', 'false', 'null',
  '{"a":null,"b":true,"c":false}', '[-0,0.0,-0.0,1e0,1.5e1]',
  // rejected by JSON.parse
  '', ' ', '{', '[1,]', '{"a":1,}', "{'a':1}", '01', '+1', '.5', '1.', '1e', '-', 'NaN', 'Infinity', 'undefined',
  '"\\x41"', '"\\u12"', '"a\tb"', '{"a" 1}', '[1 2]', '{}{}', '"unterminated', 'tru', 'nul', '\ufeff{}',
].forEach(addText);
// Invalid UTF-8 inside a string: Node's decoder replaces maximal subparts.
['22e282 22', '22ed a080 22', '22ff22', '22c0af22', '22f09f98 22', '22f4908080 22', '22e0809f22', '2280bf22', '22ef bfbf22']
  .forEach(h => addText(Buffer.from(h.replace(/ /g, ''), 'hex')));

function randNumberText() {
  const forms = [
    () => String(int(1000) - 500),
    () => (rnd() * 1000 - 500).toString(),
    () => (rnd() < 0.5 ? '-' : '') + int(10) + '.' + String(int(100000)).padStart(5, '0'),
    () => int(10) + 'e' + (rnd() < 0.5 ? '-' : '+') + int(30),
    () => int(10) + 'E' + int(400),
    () => '-0', () => '0.0', () => String(int(2 ** 31)) + String(int(2 ** 31)),
  ];
  return pick(forms)();
}
function randStringText() {
  let s = '"';
  const n = int(8);
  for (let j = 0; j < n; j++) {
    const r = rnd();
    if (r < 0.35) s += String.fromCharCode(0x20 + int(0x5f)).replace(/["\\]/, 'x');
    else if (r < 0.55) s += pick(['\\n', '\\t', '\\"', '\\\\', '\\/', '\\b', '\\f', '\\r']);
    else if (r < 0.75) s += '\\u' + pick(units).toString(16).padStart(4, '0');
    else if (r < 0.85) s += '\\u' + int(0x10000).toString(16).padStart(4, rnd() < 0.5 ? '0' : '0').toUpperCase();
    else s += pick(['é', '漢', '😀', '\u2028', '<', '&']);
  }
  return s + '"';
}
const keys = ['a', 'b', 'dataId', 'group', '0', '1', '2', '10', '01', '-1', '4294967294', '4294967295', 'x y', '\\u0061'];
const ws = () => pick(['', '', '', ' ', '\n', '\t ', '\r\n']);
function randValue(depth) {
  const r = rnd();
  if (depth > 3 || r < 0.3) return randNumberText();
  if (r < 0.55) return randStringText();
  if (r < 0.62) return pick(['true', 'false', 'null']);
  if (r < 0.8) {
    const n = int(4);
    const items = [];
    for (let i = 0; i < n; i++) items.push(ws() + randValue(depth + 1) + ws());
    return '[' + items.join(',') + ']';
  }
  const n = int(5);
  const items = [];
  for (let i = 0; i < n; i++) items.push(ws() + '"' + pick(keys) + '"' + ws() + ':' + ws() + randValue(depth + 1) + ws());
  return '{' + items.join(',') + '}';
}
for (let i = 0; i < 1500; i++) addText(ws() + randValue(0) + ws());

process.stdout.write(JSON.stringify({
  generator: 'interop/node/gen_jsjson.js',
  node: process.version,
  numbers,
  strings,
  normalize,
}, null, 0) + '\n');
