// Typed wrapper around the desktop app's commands and events.
//
// The contract is docs/desktop-ipc.md. Every command takes one object with
// camelCase keys and rejects with { code, message }; every function here
// rejects with an ApiError and nothing else, and checks the shape of what it
// gets back, so a mismatch between the two sides shows as a plain error
// instead of a broken screen.
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

// ---------------------------------------------------------------- types

/** Which way changes travel for this computer. */
export type SyncMode = 'send-receive' | 'send-only' | 'receive-only';
/** What happens to the paths a rule matches. */
export type RuleMode = SyncMode | 'ignore';
export type RepositoryState =
  | 'starting'
  | 'idle'
  | 'syncing'
  | 'waiting_for_space'
  | 'paused'
  | 'error'
  | 'stopped';

export interface Progress {
  phase: 'sending' | 'receiving';
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Path of the file being worked on. */
  current: string | null;
  /** Measured over the last seconds. */
  bytesPerSecond: number | null;
}

export type ActivityKind = 'received' | 'sent' | 'conflict' | 'problem';

export interface Activity {
  at: number;
  kind: ActivityKind;
  /** Plain words, shown as is. */
  text: string;
  /** For a conflict: the kept copy's path, relative to the folder. */
  path: string | null;
}

export interface Problem {
  code: string;
  /** A plain-language sentence. */
  message: string;
  /** The technical cause, for whoever helps; absent or null when there is none. */
  details?: string | null;
}

export interface Usage {
  used: number;
  quota: number | null;
}

/** One synced folder, as the desktop app pushes it whole. */
export interface RepositoryView {
  name: string;
  folder: string;
  /** Never holds a password. */
  relay: string;
  mode: SyncMode;
  state: RepositoryState;
  /** Paused from the app; Resume undoes it. */
  pausedByUser: boolean;
  /** Only while syncing. */
  progress: Progress | null;
  /** Why it is in error or paused. */
  problem: Problem | null;
  /** End of the last successful cycle. */
  lastSync: number | null;
  /** Relay usage, when known. */
  usage: Usage | null;
  /** Newest first. */
  activity: Activity[];
}

export type Presence = 'active' | 'absent' | 'retired' | 'unreadable';

/** One computer of a repository. */
export interface ComputerView {
  /** Unique; names are not (cloned computers share one). */
  id: string;
  name: string;
  thisComputer: boolean;
  lastSeen: number | null;
  presence: Presence;
  /** Files it has not received yet. */
  lacksFiles: number;
  lacksBytes: number;
}

export interface CheckStep {
  kind: string;
  title: string;
  outcome: 'passed' | 'failed' | 'not_run';
  detail?: string;
  code?: string;
  problem?: string;
  fix?: string;
  details?: string;
}

export interface RelayCheck {
  address: string;
  steps: CheckStep[];
  /** Whether the folder already holds a shared folder to join; null when unknown. */
  holdsRepository: boolean | null;
}

export interface Rule {
  path: string;
  mode: RuleMode;
}

export interface RepositoryOptions {
  mode: SyncMode;
  /** Bytes; null = no limit. */
  quota: number | null;
  include: string[];
  exclude: string[];
  rules: Rule[];
  /** null = the default (2 s). */
  pollMinSeconds: number | null;
  /** null = the default (90 s). */
  pollMaxSeconds: number | null;
}

export interface NewRepository {
  name: string;
  folder: string;
  relay: string;
  relayPassword: string | null;
  passphrase: string;
  options: RepositoryOptions;
}

export interface AppSettings {
  notifications: boolean;
  startAtLogin: boolean;
}

/** The error shape every command rejects with. */
export interface ApiError {
  /** Stable machine string, e.g. "config_invalid"; "unexpected" when the error was not one of ours. */
  code: string;
  /** A plain-language sentence that can be shown as is. */
  message: string;
}

/** The code used for anything that did not come back as a well-formed ApiError. */
export const UNEXPECTED = 'unexpected';
/** The code verify_passphrase and join_repository reject with for a passphrase that does not fit. */
export const WRONG_PASSPHRASE = 'wrong_passphrase';

const UNEXPECTED_MESSAGE =
  'Something unexpected went wrong while talking to Escale. Closing and reopening the app may help.';

// ---------------------------------------------------------------- shape checks

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

function isBoolean(value: unknown): value is boolean {
  return typeof value === 'boolean';
}

function orNull<T>(check: (value: unknown) => value is T): (value: unknown) => value is T | null {
  return (value: unknown): value is T | null => value === null || check(value);
}

function oneOf<T extends string>(values: readonly T[]): (value: unknown) => value is T {
  return (value: unknown): value is T => typeof value === 'string' && (values as readonly string[]).includes(value);
}

function arrayOf<T>(check: (value: unknown) => value is T): (value: unknown) => value is T[] {
  return (value: unknown): value is T[] => Array.isArray(value) && value.every(check);
}

/** True when `value[key]` passes its check for every key of `shape`. */
function hasShape(value: unknown, shape: Record<string, (field: unknown) => boolean>): value is Record<string, unknown> {
  if (!isRecord(value)) {
    return false;
  }
  return Object.entries(shape).every(([key, check]) => check(value[key]));
}

const SYNC_MODES = ['send-receive', 'send-only', 'receive-only'] as const;
const RULE_MODES = [...SYNC_MODES, 'ignore'] as const;
const STATES = ['starting', 'idle', 'syncing', 'waiting_for_space', 'paused', 'error', 'stopped'] as const;
const PRESENCES = ['active', 'absent', 'retired', 'unreadable'] as const;

export const isSyncMode = oneOf<SyncMode>(SYNC_MODES);
export const isRuleMode = oneOf<RuleMode>(RULE_MODES);
export const isRepositoryState = oneOf<RepositoryState>(STATES);

/** True for a well-formed `{ code, message }` error from the desktop app. */
export function isApiError(value: unknown): value is ApiError {
  return isRecord(value) && isNonEmptyString(value['code']) && isNonEmptyString(value['message']);
}

function isProgress(value: unknown): value is Progress {
  return hasShape(value, {
    phase: oneOf(['sending', 'receiving']),
    filesDone: isCount,
    filesTotal: isCount,
    bytesDone: isCount,
    bytesTotal: isCount,
    current: orNull(isString),
    bytesPerSecond: orNull(isCount),
  });
}

function isActivity(value: unknown): value is Activity {
  return hasShape(value, {
    at: isCount,
    kind: oneOf(['received', 'sent', 'conflict', 'problem']),
    text: isString,
    path: orNull(isString),
  });
}

function isProblem(value: unknown): value is Problem {
  return hasShape(value, {
    code: isString,
    message: isString,
    details: (field: unknown) => field === undefined || field === null || typeof field === 'string',
  });
}

function isUsage(value: unknown): value is Usage {
  return hasShape(value, { used: isCount, quota: orNull(isCount) });
}

/** True for a value with the RepositoryView shape. */
export function isRepositoryView(value: unknown): value is RepositoryView {
  return hasShape(value, {
    name: isString,
    folder: isString,
    relay: isString,
    mode: isSyncMode,
    state: isRepositoryState,
    pausedByUser: isBoolean,
    progress: orNull(isProgress),
    problem: orNull(isProblem),
    lastSync: orNull(isCount),
    usage: orNull(isUsage),
    activity: arrayOf(isActivity),
  });
}

export function isComputerView(value: unknown): value is ComputerView {
  return hasShape(value, {
    id: isString,
    name: isString,
    thisComputer: isBoolean,
    lastSeen: orNull(isCount),
    presence: oneOf(PRESENCES),
    lacksFiles: isCount,
    lacksBytes: isCount,
  });
}

function isOptionalString(value: unknown): boolean {
  return value === undefined || typeof value === 'string';
}

function isCheckStep(value: unknown): value is CheckStep {
  return hasShape(value, {
    kind: isString,
    title: isString,
    outcome: oneOf(['passed', 'failed', 'not_run']),
    detail: isOptionalString,
    code: isOptionalString,
    problem: isOptionalString,
    fix: isOptionalString,
    details: isOptionalString,
  });
}

export function isRelayCheck(value: unknown): value is RelayCheck {
  return hasShape(value, {
    address: isString,
    steps: arrayOf(isCheckStep),
    holdsRepository: orNull(isBoolean),
  });
}

function isRule(value: unknown): value is Rule {
  return hasShape(value, { path: isString, mode: isRuleMode });
}

export function isRepositoryOptions(value: unknown): value is RepositoryOptions {
  return hasShape(value, {
    mode: isSyncMode,
    quota: orNull(isCount),
    include: arrayOf(isString),
    exclude: arrayOf(isString),
    rules: arrayOf(isRule),
    pollMinSeconds: orNull(isCount),
    pollMaxSeconds: orNull(isCount),
  });
}

export function isAppSettings(value: unknown): value is AppSettings {
  return hasShape(value, { notifications: isBoolean, startAtLogin: isBoolean });
}

function isNull(value: unknown): value is null {
  return value === null || value === undefined;
}

/**
 * Turns whatever a command rejected with into an ApiError. A well-formed error is kept
 * (only its code and message); anything else (a thrown Error, a bare string, `undefined`,
 * an object with missing fields) becomes `{ code: "unexpected", message }`.
 */
export function toApiError(value: unknown): ApiError {
  if (isApiError(value)) {
    return { code: value.code, message: value.message };
  }
  return { code: UNEXPECTED, message: UNEXPECTED_MESSAGE };
}

// ---------------------------------------------------------------- commands

/** Runs a command and checks its result; rejects with an ApiError only. */
async function call<T>(
  command: string,
  args: Record<string, unknown> | undefined,
  check: (value: unknown) => value is T,
): Promise<T> {
  let result: unknown;
  try {
    result = args === undefined ? await invoke<unknown>(command) : await invoke<unknown>(command, args);
  } catch (error: unknown) {
    throw toApiError(error);
  }
  if (!check(result)) {
    throw toApiError(result);
  }
  return result;
}

/** For commands whose result is `null`. */
async function run(command: string, args?: Record<string, unknown>): Promise<void> {
  await call(command, args, isNull);
}

/** The synced folders configured on this computer, in the order they were added. */
export function listRepositories(): Promise<RepositoryView[]> {
  return call('list_repositories', undefined, arrayOf(isRepositoryView));
}

/** The computers of one repository, this one included. */
export function listComputers(name: string): Promise<ComputerView[]> {
  return call('list_computers', { name }, arrayOf(isComputerView));
}

/** Tests a relay; a failed check resolves too, its steps say what failed. */
export function checkRelay(relay: string, relayPassword: string | null): Promise<RelayCheck> {
  return call('check_relay', { relay, relayPassword }, isRelayCheck);
}

/** Resolves when the passphrase opens the shared folder; rejects with code `wrong_passphrase` when not. */
export function verifyPassphrase(relay: string, relayPassword: string | null, passphrase: string): Promise<void> {
  return run('verify_passphrase', { relay, relayPassword, passphrase });
}

/** Creates a new shared folder on the relay and starts syncing it. */
export function createRepository(setup: NewRepository): Promise<RepositoryView> {
  return call('create_repository', { setup }, isRepositoryView);
}

/** Joins an existing shared folder and starts syncing it; rejects with `wrong_passphrase` and creates nothing. */
export function joinRepository(setup: NewRepository): Promise<RepositoryView> {
  return call('join_repository', { setup }, isRepositoryView);
}

/** The native folder picker; null when cancelled. */
export function pickFolder(title: string): Promise<string | null> {
  return call('pick_folder', { title }, orNull(isString));
}

/** The native save dialog for a recovery copy of the passphrase; false when cancelled. */
export function saveRecoveryCopy(name: string, relay: string, passphrase: string): Promise<boolean> {
  return call('save_recovery_copy', { name, relay, passphrase }, isBoolean);
}

export function pauseRepository(name: string): Promise<void> {
  return run('pause_repository', { name });
}

export function resumeRepository(name: string): Promise<void> {
  return run('resume_repository', { name });
}

export function syncNow(name: string): Promise<void> {
  return run('sync_now', { name });
}

/**
 * Lets a folder paused because many files went missing delete them on the
 * other computers too, and syncs it now. Resolves to how many files that deletes.
 */
export function confirmDeletions(name: string): Promise<number> {
  return call('confirm_deletions', { name }, isCount);
}

export function pauseAll(): Promise<void> {
  return run('pause_all');
}

export function resumeAll(): Promise<void> {
  return run('resume_all');
}

export function repositoryOptions(name: string): Promise<RepositoryOptions> {
  return call('repository_options', { name }, isRepositoryOptions);
}

export function updateOptions(name: string, options: RepositoryOptions): Promise<RepositoryView> {
  return call('update_options', { name, options }, isRepositoryView);
}

/** Stops syncing a folder on this computer; the folder and its files stay. */
export function removeRepository(name: string): Promise<void> {
  return run('remove_repository', { name });
}

/** Opens the repository's folder, or `path` (relative to it) inside it. */
export function openFolder(name: string, path: string | null = null): Promise<void> {
  return run('open_folder', { name, path });
}

export function openLogFolder(): Promise<void> {
  return run('open_log_folder');
}

export function appSettings(): Promise<AppSettings> {
  return call('app_settings', undefined, isAppSettings);
}

export function setAppSettings(settings: AppSettings): Promise<AppSettings> {
  return call('set_app_settings', { settings }, isAppSettings);
}

// ---------------------------------------------------------------- events

/** Calls `callback` with every repository the desktop app pushes; resolves to the function that stops listening. */
export async function onRepository(callback: (view: RepositoryView) => void): Promise<UnlistenFn> {
  try {
    return await listen<unknown>('repository', (event) => {
      if (isRepositoryView(event.payload)) {
        callback(event.payload);
      }
    });
  } catch (error: unknown) {
    throw toApiError(error);
  }
}

/** Calls `callback` with the name of every repository removed; resolves to the function that stops listening. */
export async function onRepositoryRemoved(callback: (name: string) => void): Promise<UnlistenFn> {
  try {
    return await listen<unknown>('repository-removed', (event) => {
      const payload = event.payload;
      if (isRecord(payload) && isString(payload['name'])) {
        callback(payload['name']);
      }
    });
  } catch (error: unknown) {
    throw toApiError(error);
  }
}
