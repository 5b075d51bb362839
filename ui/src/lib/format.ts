// What the main window says about a synced folder, in plain words: states,
// sizes, times, progress and the other computers.
import type { ComputerView, Progress, RepositoryState, Usage } from './api';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A computer not seen for this long is pointed out even when still counted as active. */
export const STALE_AFTER = 3 * DAY;

export function stateText(state: RepositoryState): string {
  switch (state) {
    case 'starting':
      return 'Starting…';
    case 'idle':
      return 'Up to date';
    case 'syncing':
      return 'Syncing…';
    case 'waiting_for_space':
      return 'Waiting for space on the shared storage';
    case 'paused':
      return 'Paused';
    case 'error':
      return 'Needs your attention';
    case 'stopped':
      return 'Stopped';
  }
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** Sizes in the decimal units the settings use: 1.2 GB, 950 MB, 12 kB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) {
    return plural(Math.round(bytes), 'byte');
  }
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes / 1000;
  let index = 0;
  // 999.6 kB would show as "1000 kB": move to the next unit from 999.5 on.
  while (value >= 999.5 && index < units.length - 1) {
    value /= 1000;
    index += 1;
  }
  const shown = value < 9.95 ? String(Math.round(value * 10) / 10) : String(Math.round(value));
  return `${shown} ${units[index] ?? 'PB'}`;
}

export function formatSpeed(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** "just now", "5 minutes ago", "yesterday", "3 days ago". */
export function formatAgo(at: number, now: number): string {
  const elapsed = Math.max(0, now - at);
  if (elapsed < MINUTE) return 'just now';
  if (elapsed < HOUR) return `${plural(Math.floor(elapsed / MINUTE), 'minute')} ago`;
  if (elapsed < DAY) return `${plural(Math.floor(elapsed / HOUR), 'hour')} ago`;
  const days = Math.floor(elapsed / DAY);
  return days === 1 ? 'yesterday' : `${days} days ago`;
}

/** "5 days", "3 hours", "20 minutes", "less than a minute". */
export function formatDuration(ms: number): string {
  if (ms < MINUTE) return 'less than a minute';
  if (ms < HOUR) return plural(Math.floor(ms / MINUTE), 'minute');
  if (ms < DAY) return plural(Math.floor(ms / HOUR), 'hour');
  return plural(Math.floor(ms / DAY), 'day');
}

export function lastSyncText(lastSync: number | null, now: number): string {
  return lastSync === null ? 'Not synced yet' : `Last synced ${formatAgo(lastSync, now)}`;
}

export function usageText(usage: Usage): string {
  return usage.quota === null
    ? `${formatBytes(usage.used)} used on the shared storage (no limit)`
    : `${formatBytes(usage.used)} of ${formatBytes(usage.quota)} used`;
}

export interface ProgressLines {
  /** "Receiving 3 of 10 files" */
  files: string;
  /** "12 MB of 40 MB, 2.1 MB/s" */
  bytes: string;
  /** "Now: Reports/q3.xlsx", when known. */
  current: string | null;
}

export function progressLines(progress: Progress): ProgressLines {
  const verb = progress.phase === 'sending' ? 'Sending' : 'Receiving';
  const files = `${verb} ${progress.filesDone} of ${plural(progress.filesTotal, 'file')}`;
  let bytes = `${formatBytes(progress.bytesDone)} of ${formatBytes(progress.bytesTotal)}`;
  if (progress.bytesPerSecond !== null) {
    bytes += `, ${formatSpeed(progress.bytesPerSecond)}`;
  }
  return { files, bytes, current: progress.current === null ? null : `Now: ${progress.current}` };
}

// ---------------------------------------------------------------- other computers

/** The other computers that count for delivery: not this one, not those that left for good. */
function others(computers: readonly ComputerView[]): ComputerView[] {
  return computers.filter((computer) => !computer.thisComputer && computer.presence !== 'retired');
}

/** "Delivered to 2 of 3 computers", or that no other computer has joined yet. */
export function deliveryText(computers: readonly ComputerView[]): string {
  const list = others(computers);
  if (list.length === 0) {
    return 'No other computer has joined yet.';
  }
  const delivered = list.filter((computer) => computer.lacksFiles === 0).length;
  return `Delivered to ${delivered} of ${plural(list.length, 'computer')}`;
}

/** One line per computer: how it is doing, in words. */
export function computerStatus(computer: ComputerView): string {
  switch (computer.presence) {
    case 'retired':
      return 'No longer takes part';
    case 'unreadable':
      return 'Its status could not be read';
    case 'absent':
    case 'active':
      break;
  }
  if (computer.lacksFiles > 0) {
    return `Waiting for ${plural(computer.lacksFiles, 'file')} (${formatBytes(computer.lacksBytes)})`;
  }
  return 'Has everything';
}

/** "laptop-b has not connected for 5 days", for an absent computer or one not seen for a while; else null. */
export function absenceWarning(computer: ComputerView, now: number): string | null {
  if (computer.thisComputer || computer.presence === 'retired') {
    return null;
  }
  const away = computer.lastSeen === null ? null : now - computer.lastSeen;
  if (computer.presence === 'absent') {
    return away === null
      ? `${computer.name} has not connected for a long time`
      : `${computer.name} has not connected for ${formatDuration(away)}`;
  }
  if (away !== null && away >= STALE_AFTER) {
    return `${computer.name} has not connected for ${formatDuration(away)}`;
  }
  return null;
}
