/**
 * The daemons' log style: text on a terminal or under journald, JSON otherwise or when asked;
 * no time under journald (it stamps lines itself); colour only on a terminal and never with
 * NO_COLOR; and the text line itself (level and message first). The real processes are checked
 * in test/integration/daemon-logs.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chooseLogStyle, formatLogLine } from '../../src/util/log.js';

const tty = { isTTY: true, journald: false, noColor: false };
const pipe = { isTTY: false, journald: false, noColor: false };
const journal = { isTTY: false, journald: true, noColor: false };

describe('chooseLogStyle', () => {
  test('auto: text with colour and time on a terminal', () => {
    assert.deepEqual(chooseLogStyle('auto', tty), { format: 'text', timestamps: true, colour: true });
  });
  test('auto: JSON lines with time on a pipe or file', () => {
    assert.deepEqual(chooseLogStyle('auto', pipe), { format: 'json', timestamps: true, colour: false });
  });
  test('auto: text without time or colour under journald', () => {
    assert.deepEqual(chooseLogStyle('auto', journal), { format: 'text', timestamps: false, colour: false });
  });
  test('--log-format json wins on a terminal, and has no time under journald', () => {
    assert.equal(chooseLogStyle('json', tty).format, 'json');
    assert.deepEqual(chooseLogStyle('json', journal), { format: 'json', timestamps: false, colour: false });
  });
  test('NO_COLOR turns colour off on a terminal; text on a pipe is never coloured', () => {
    assert.equal(chooseLogStyle('auto', { ...tty, noColor: true }).colour, false);
    assert.equal(chooseLogStyle('text', pipe).colour, false);
  });
});

describe('formatLogLine', () => {
  const line = JSON.stringify({ level: 40, time: 0, pid: 7, name: 'polod', group: '224.0.0.112', count: 2, msg: 'skipped a file' });

  test('level and message first, then the fields, then the time', () => {
    assert.equal(formatLogLine(line, false), 'WARN  skipped a file group=224.0.0.112 count=2 time=1970-01-01T00:00:00.000Z\n');
  });
  test('colour wraps the level only', () => {
    assert.ok(formatLogLine(line, true).startsWith('\u001b[33mWARN \u001b[0m skipped a file '));
  });
  test('errors show their message; control characters are escaped', () => {
    const text = formatLogLine(
      JSON.stringify({ level: 50, msg: 'bad\u001b[2J', err: { type: 'Error', message: 'EACCES: denied', code: 'EACCES' } }),
      false,
    );
    assert.equal(text, 'ERROR bad\\u001b[2J err="EACCES: denied (EACCES)"\n');
  });
});
