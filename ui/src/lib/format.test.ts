import { describe, expect, it } from 'vitest';
import {
  absenceWarning,
  computerStatus,
  deliveryText,
  formatAgo,
  formatBytes,
  formatDuration,
  formatSpeed,
  lastSyncText,
  progressLines,
  stateText,
  usageText,
} from './format';
import { computerView } from '../test/fixtures';

const NOW = 1_700_000_000_000;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

describe('stateText', () => {
  it.each([
    ['starting', 'Starting…'],
    ['idle', 'Up to date'],
    ['syncing', 'Syncing…'],
    ['waiting_for_space', 'Waiting for space on the shared storage'],
    ['paused', 'Paused'],
    ['error', 'Needs your attention'],
    ['stopped', 'Stopped'],
  ] as const)('%s is "%s"', (state, text) => {
    expect(stateText(state)).toBe(text);
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 bytes'],
    [1, '1 byte'],
    [999, '999 bytes'],
    [1000, '1 kB'],
    [1500, '1.5 kB'],
    [12_345, '12 kB'],
    [999_600, '1 MB'],
    [1_234_567, '1.2 MB'],
    [1_200_000_000, '1.2 GB'],
    [5_000_000_000, '5 GB'],
    [9_960_000_000, '10 GB'],
    [2_500_000_000_000, '2.5 TB'],
  ])('%d is %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it('writes speeds per second', () => {
    expect(formatSpeed(2_100_000)).toBe('2.1 MB/s');
  });
});

describe('times', () => {
  it.each([
    [0, 'just now'],
    [59_000, 'just now'],
    [MINUTE, '1 minute ago'],
    [2 * MINUTE + 5_000, '2 minutes ago'],
    [HOUR, '1 hour ago'],
    [5 * HOUR, '5 hours ago'],
    [DAY + HOUR, 'yesterday'],
    [5 * DAY, '5 days ago'],
    [-5_000, 'just now'],
  ])('%d ms ago is "%s"', (elapsed, text) => {
    expect(formatAgo(NOW - elapsed, NOW)).toBe(text);
  });

  it('writes durations', () => {
    expect(formatDuration(30_000)).toBe('less than a minute');
    expect(formatDuration(20 * MINUTE)).toBe('20 minutes');
    expect(formatDuration(HOUR)).toBe('1 hour');
    expect(formatDuration(5 * DAY + HOUR)).toBe('5 days');
  });

  it('says when the folder was last synced', () => {
    expect(lastSyncText(null, NOW)).toBe('Not synced yet');
    expect(lastSyncText(NOW - 2 * MINUTE, NOW)).toBe('Last synced 2 minutes ago');
  });
});

describe('usage and progress', () => {
  it('says how much of the limit is used', () => {
    expect(usageText({ used: 1_200_000_000, quota: 5_000_000_000 })).toBe('1.2 GB of 5 GB used');
    expect(usageText({ used: 300_000_000, quota: null })).toBe('300 MB used on the shared storage (no limit)');
  });

  it('describes progress with files, bytes, speed and the current file', () => {
    expect(
      progressLines({
        phase: 'receiving',
        filesDone: 3,
        filesTotal: 10,
        bytesDone: 12_000_000,
        bytesTotal: 40_000_000,
        current: 'Reports/q3.xlsx',
        bytesPerSecond: 2_100_000,
      }),
    ).toEqual({ files: 'Receiving 3 of 10 files', bytes: '12 MB of 40 MB, 2.1 MB/s', current: 'Now: Reports/q3.xlsx' });
    expect(
      progressLines({
        phase: 'sending',
        filesDone: 0,
        filesTotal: 1,
        bytesDone: 0,
        bytesTotal: 500,
        current: null,
        bytesPerSecond: null,
      }),
    ).toEqual({ files: 'Sending 0 of 1 file', bytes: '0 bytes of 500 bytes', current: null });
  });
});

describe('the other computers', () => {
  const me = computerView({ name: 'desk-a', thisComputer: true, lastSeen: NOW });
  const b = computerView({ name: 'laptop-b', lastSeen: NOW - HOUR });
  const c = computerView({ name: 'desk-c', lastSeen: NOW - HOUR, lacksFiles: 3, lacksBytes: 12_000_000 });
  const d = computerView({ name: 'desk-d', lastSeen: NOW - 2 * HOUR });
  const gone = computerView({ name: 'old-pc', presence: 'retired', lacksFiles: 40 });

  it('counts deliveries to the others, leaving out this computer and those that left', () => {
    expect(deliveryText([me, b, c, d, gone])).toBe('Delivered to 2 of 3 computers');
    expect(deliveryText([me, c])).toBe('Delivered to 0 of 1 computer');
    expect(deliveryText([me])).toBe('No other computer has joined yet.');
    expect(deliveryText([])).toBe('No other computer has joined yet.');
  });

  it('says how each computer is doing', () => {
    expect(computerStatus(b)).toBe('Has everything');
    expect(computerStatus(c)).toBe('Waiting for 3 files (12 MB)');
    expect(computerStatus(computerView({ lacksFiles: 1, lacksBytes: 10 }))).toBe('Waiting for 1 file (10 bytes)');
    expect(computerStatus(gone)).toBe('No longer takes part');
    expect(computerStatus(computerView({ presence: 'unreadable' }))).toBe('Its status could not be read');
  });

  it('points out computers that have not connected for a while', () => {
    expect(absenceWarning(computerView({ name: 'laptop-b', presence: 'absent', lastSeen: NOW - 5 * DAY - HOUR }), NOW)).toBe(
      'laptop-b has not connected for 5 days',
    );
    expect(absenceWarning(computerView({ name: 'laptop-b', presence: 'absent', lastSeen: null }), NOW)).toBe(
      'laptop-b has not connected for a long time',
    );
    expect(absenceWarning(computerView({ name: 'desk-d', lastSeen: NOW - 4 * DAY }), NOW)).toBe(
      'desk-d has not connected for 4 days',
    );
    expect(absenceWarning(b, NOW)).toBeNull();
    expect(absenceWarning(computerView({ lastSeen: null }), NOW)).toBeNull();
    expect(absenceWarning({ ...me, lastSeen: NOW - 9 * DAY }, NOW)).toBeNull();
    expect(absenceWarning({ ...gone, lastSeen: NOW - 90 * DAY }, NOW)).toBeNull();
  });
});
