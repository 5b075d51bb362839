// The set-up wizard as a state machine behind a Svelte store. The commands it
// calls are injected, so tests need no Tauri.
//
//   intent ─▶ storage ─▶ folder ─▶ passphrase ─▶ finish ─▶ (done)
//
// - intent: create a new shared folder, or join an existing one.
// - storage: the kind of storage and its fields; "Test connection" must pass
//   (for the fields as they are now) before going on, and the storage must
//   hold a shared folder to join, or none to create one.
// - folder: the folder on this computer and the name.
// - passphrase: chosen twice with a strength hint (create), or checked
//   against the storage (join); a wrong one keeps the step.
// - finish: a summary, the advanced options, and the button that creates or
//   joins; a wrong passphrase there goes back to the passphrase step.
//
// Errors of a step are shown once someone tried to leave it ("attempted"),
// and then follow what is typed.
import { writable, type Readable } from 'svelte/store';
import {
  toApiError,
  WRONG_PASSPHRASE,
  type ApiError,
  type NewRepository,
  type RelayCheck,
  type RepositoryView,
} from './api';
import { defaultOptionsForm, formToOptions, isDefaultForm, type OptionsErrors, type OptionsForm } from './options';
import { MIN_PASSPHRASE_LENGTH, passphraseStrength } from './passphrase';
import {
  buildRelay,
  emptyStorageFields,
  withWebdavFlavor,
  YANDEX_HOST,
  type StorageFields,
  type StorageKind,
  type TextFieldKey,
  type WebdavFlavor,
} from './storage';

export type Intent = 'create' | 'join';
export type StepId = 'intent' | 'storage' | 'folder' | 'passphrase' | 'finish';

export const STEPS: readonly StepId[] = ['intent', 'storage', 'folder', 'passphrase', 'finish'];

export const WRONG_PASSPHRASE_MESSAGE =
  'This passphrase does not open the shared folder. Check it with the person who set it up.';

export function stepTitle(step: StepId, intent: Intent | null): string {
  switch (step) {
    case 'intent':
      return 'What would you like to do?';
    case 'storage':
      return 'Where will the files pass through?';
    case 'folder':
      return 'Which folder on this computer?';
    case 'passphrase':
      return intent === 'join' ? 'Type the passphrase' : 'Choose a passphrase';
    case 'finish':
      return 'Ready to start';
  }
}

export function stepNumber(step: StepId): number {
  return STEPS.indexOf(step) + 1;
}

export type CheckState =
  | { status: 'idle' }
  | { status: 'running'; key: string }
  | { status: 'done'; key: string; result: RelayCheck }
  | { status: 'failed'; key: string; error: ApiError };

export type RecoveryState =
  | { status: 'idle' }
  | { status: 'saving' }
  | { status: 'saved'; passphrase: string }
  | { status: 'failed'; message: string };

export interface WizardState {
  step: StepId;
  intent: Intent | null;
  kind: StorageKind | null;
  storage: StorageFields;
  check: CheckState;
  folder: string;
  name: string;
  /** The name was typed, so choosing a folder no longer changes it. */
  nameEdited: boolean;
  picking: boolean;
  pickError: string | null;
  passphrase: string;
  passphraseAgain: string;
  acknowledged: boolean;
  recovery: RecoveryState;
  verifying: boolean;
  /** The passphrase the storage refused, while it is still the one typed. */
  wrongPassphrase: string | null;
  /** Why the passphrase could not be checked (not a wrong passphrase). */
  verifyError: ApiError | null;
  options: OptionsForm;
  submitting: boolean;
  submitError: ApiError | null;
  attempted: Partial<Record<StepId, true>>;
  /** The folder made, once done. */
  done: RepositoryView | null;
}

export interface WizardApi {
  checkRelay(relay: string, relayPassword: string | null): Promise<RelayCheck>;
  verifyPassphrase(relay: string, relayPassword: string | null, passphrase: string): Promise<void>;
  createRepository(setup: NewRepository): Promise<RepositoryView>;
  joinRepository(setup: NewRepository): Promise<RepositoryView>;
  pickFolder(title: string): Promise<string | null>;
  saveRecoveryCopy(name: string, relay: string, passphrase: string): Promise<boolean>;
}

export function initialWizardState(): WizardState {
  return {
    step: 'intent',
    intent: null,
    kind: null,
    storage: emptyStorageFields(),
    check: { status: 'idle' },
    folder: '',
    name: '',
    nameEdited: false,
    picking: false,
    pickError: null,
    passphrase: '',
    passphraseAgain: '',
    acknowledged: false,
    recovery: { status: 'idle' },
    verifying: false,
    wrongPassphrase: null,
    verifyError: null,
    options: defaultOptionsForm(),
    submitting: false,
    submitError: null,
    attempted: {},
    done: null,
  };
}

// ---------------------------------------------------------------- derived facts

/** The relay address and password the storage fields make, or null while they have errors. */
export function relayOf(state: WizardState): { relay: string; relayPassword: string | null } | null {
  if (state.kind === null) return null;
  const result = buildRelay(state.kind, state.storage);
  return result.ok ? { relay: result.relay, relayPassword: result.relayPassword } : null;
}

/** What a check was run for: a new address or password needs a new check. */
function checkKey(relay: { relay: string; relayPassword: string | null }): string {
  return JSON.stringify([relay.relay, relay.relayPassword]);
}

/** The check that belongs to the fields as they are now, if any. */
export function currentCheck(state: WizardState): CheckState {
  const relay = relayOf(state);
  if (relay === null || state.check.status === 'idle' || state.check.key !== checkKey(relay)) {
    return { status: 'idle' };
  }
  return state.check;
}

export function checkPassed(check: RelayCheck): boolean {
  return check.steps.length > 0 && check.steps.every((step) => step.outcome === 'passed');
}

/**
 * When the storage does not fit what was chosen: it already holds a shared
 * folder but "create" was chosen, or holds none but "join" was chosen.
 */
export type Mismatch = 'holds_repository' | 'holds_nothing' | null;

export function mismatchOf(state: WizardState): Mismatch {
  const check = currentCheck(state);
  if (check.status !== 'done' || !checkPassed(check.result)) return null;
  if (state.intent === 'create' && check.result.holdsRepository === true) return 'holds_repository';
  if (state.intent === 'join' && check.result.holdsRepository === false) return 'holds_nothing';
  return null;
}

export function mismatchMessage(mismatch: Exclude<Mismatch, null>): string {
  return mismatch === 'holds_repository'
    ? 'This storage already holds a shared folder. To use it, join it instead of creating a new one.'
    : 'This storage does not hold a shared folder yet. Create a new one here, or check the storage details with the person who set it up.';
}

/** The last part of a path, usable as a name: "Reports" for C:\Users\ana\Reports\. */
export function folderName(path: string): string {
  const parts = path.split(/[\\/]+/).filter((part) => part !== '');
  const last = parts[parts.length - 1] ?? '';
  if (/^[A-Za-z]:$/.test(last)) return '';
  return last
    .replace(/[<>:"|?*\p{Cc}]/gu, '')
    .replace(/[.\s]+$/u, '')
    .trim()
    .slice(0, 64);
}

/** True for a full path on Windows, macOS or Linux. */
export function isFullPath(path: string): boolean {
  return /^([A-Za-z]:[\\/]|\\\\[^\\]|\/)/.test(path.trim());
}

function pathParts(path: string): string[] {
  return path
    .trim()
    .toLowerCase()
    .split(/[\\/]+/)
    .filter((part) => part !== '');
}

/** True when one path is the other or inside it (ignoring case and the kind of slash). */
export function pathsOverlap(a: string, b: string): boolean {
  const pa = pathParts(a);
  const pb = pathParts(b);
  const shorter = pa.length <= pb.length ? pa : pb;
  const longer = pa.length <= pb.length ? pb : pa;
  return shorter.length > 0 && shorter.every((part, i) => part === longer[i]);
}

export type FieldErrors = Partial<
  Record<TextFieldKey | 'intent' | 'kind' | 'check' | 'folder' | 'name' | 'passphrase' | 'passphraseAgain' | 'acknowledged', string>
> &
  OptionsErrors;

/** Everything wrong on a step, shown or not. */
export function stepErrors(state: WizardState, existingNames: readonly string[]): FieldErrors {
  switch (state.step) {
    case 'intent':
      return state.intent === null ? { intent: 'Choose one of the two.' } : {};
    case 'storage': {
      if (state.kind === null) return { kind: 'Choose where the files will pass through.' };
      const built = buildRelay(state.kind, state.storage);
      if (!built.ok) return built.errors;
      const check = currentCheck(state);
      if (check.status !== 'done' || !checkPassed(check.result)) {
        return { check: 'Test the connection first: press “Test connection”.' };
      }
      const mismatch = mismatchOf(state);
      return mismatch === null ? {} : { check: mismatchMessage(mismatch) };
    }
    case 'folder':
      return folderErrors(state, existingNames);
    case 'passphrase':
      return passphraseErrors(state);
    case 'finish': {
      const options = formToOptions(state.options);
      return options.ok ? {} : options.errors;
    }
  }
}

function folderErrors(state: WizardState, existingNames: readonly string[]): FieldErrors {
  const errors: FieldErrors = {};
  const folder = state.folder.trim();
  if (folder === '') {
    errors.folder = 'Write the folder’s full path, or press Choose… to pick it.';
  } else if (!isFullPath(folder)) {
    errors.folder =
      'Write the folder’s full path, like C:\\Users\\ana\\Documents\\Reports or /Users/ana/Reports, or press Choose…';
  } else if (state.kind === 'local' && pathsOverlap(folder, state.storage.path)) {
    errors.folder = 'This folder and the shared storage folder must be separate: neither may be inside the other.';
  }
  const name = state.name.trim();
  if (name === '') {
    errors.name = 'Give the folder a name.';
  } else if ([...name].length > 64) {
    errors.name = 'The name is too long: 64 characters at most.';
  } else if (/[/\\<>:"|?*\p{Cc}]/u.test(name) || name.endsWith('.')) {
    errors.name = 'The name cannot contain / \\ < > : " | ? * or end with a dot.';
  } else if (existingNames.some((existing) => existing.toLowerCase() === name.toLowerCase())) {
    errors.name = 'Another synced folder already has this name. Choose another one.';
  }
  return errors;
}

function passphraseErrors(state: WizardState): FieldErrors {
  const errors: FieldErrors = {};
  if (state.intent === 'join') {
    if (state.passphrase === '') errors.passphrase = 'Type the passphrase of the shared folder.';
    else if (state.wrongPassphrase === state.passphrase) errors.passphrase = WRONG_PASSPHRASE_MESSAGE;
    return errors;
  }
  if (state.passphrase === '') {
    errors.passphrase = 'Choose a passphrase.';
  } else if ([...state.passphrase].length < MIN_PASSPHRASE_LENGTH) {
    errors.passphrase = `The passphrase is too short: use at least ${MIN_PASSPHRASE_LENGTH} characters, better several words.`;
  } else if (passphraseStrength(state.passphrase) === 'weak') {
    errors.passphrase = 'This passphrase is too easy to guess. Make it longer, for example four or five unrelated words.';
  }
  if (state.passphraseAgain === '') {
    errors.passphraseAgain = 'Type the passphrase again.';
  } else if (state.passphraseAgain !== state.passphrase) {
    errors.passphraseAgain = 'The two passphrases are not the same.';
  }
  if (!state.acknowledged) {
    errors.acknowledged = 'Tick this box to go on.';
  }
  return errors;
}

/** The errors to show now: a step's errors once leaving it was tried; a wrong passphrase always. */
export function visibleErrors(state: WizardState, existingNames: readonly string[]): FieldErrors {
  const errors = stepErrors(state, existingNames);
  if (state.attempted[state.step]) return errors;
  if (state.step === 'passphrase' && errors.passphrase === WRONG_PASSPHRASE_MESSAGE) {
    return { passphrase: errors.passphrase };
  }
  if (state.step === 'storage' && errors.check !== undefined && mismatchOf(state) !== null) {
    return { check: errors.check };
  }
  return {};
}

/** True when something was typed that leaving would lose. */
export function hasEnteredData(state: WizardState): boolean {
  const defaults = emptyStorageFields();
  const storageTyped = (Object.keys(defaults) as (keyof StorageFields)[]).some((key) => {
    if (key === 'secure' || key === 'flavor') return false;
    const value = state.storage[key];
    return value.trim() !== '' && !(key === 'host' && value.trim() === YANDEX_HOST);
  });
  return (
    storageTyped ||
    state.folder.trim() !== '' ||
    state.name.trim() !== '' ||
    state.passphrase !== '' ||
    state.passphraseAgain !== '' ||
    !isDefaultForm(state.options)
  );
}

/** The setup the finish step sends, or null while something is missing. */
export function setupOf(state: WizardState): NewRepository | null {
  const relay = relayOf(state);
  const options = formToOptions(state.options);
  if (relay === null || !options.ok) return null;
  return {
    name: state.name.trim(),
    folder: state.folder.trim(),
    relay: relay.relay,
    relayPassword: relay.relayPassword,
    passphrase: state.passphrase,
    options: options.options,
  };
}

export function isBusy(state: WizardState): boolean {
  return state.check.status === 'running' || state.verifying || state.submitting || state.picking;
}

// ---------------------------------------------------------------- the controller

/**
 * What a submit did, so the screen knows where focus goes:
 * - moved: to another step (or back to the passphrase after a refusal);
 * - invalid: errors are shown on this step;
 * - checked: the connection test ran, the step stays;
 * - failed: a command failed, its message is shown;
 * - done: the folder is set up;
 * - busy: something is still running, nothing happened.
 */
export type SubmitOutcome = 'moved' | 'invalid' | 'checked' | 'failed' | 'done' | 'busy';

export interface Wizard extends Readable<WizardState> {
  chooseIntent(intent: Intent): void;
  /** After a check showed the storage does not fit: create instead of join, or the other way. */
  switchIntent(): void;
  chooseKind(kind: StorageKind): void;
  setStorageField(key: TextFieldKey, value: string): void;
  setSecure(secure: boolean): void;
  setFlavor(flavor: WebdavFlavor): void;
  testConnection(): Promise<void>;
  setFolder(folder: string): void;
  setName(name: string): void;
  pickFolder(): Promise<void>;
  /** Picks the shared storage folder (the "Network or local folder" kind). */
  pickStorageFolder(): Promise<void>;
  setPassphrase(passphrase: string): void;
  setPassphraseAgain(passphrase: string): void;
  setAcknowledged(acknowledged: boolean): void;
  saveRecoveryCopy(): Promise<void>;
  setOptions(options: OptionsForm): void;
  /** Next, Enter, or the final "Start syncing". */
  submit(): Promise<SubmitOutcome>;
  back(): void;
  hasEnteredData(): boolean;
}

export function createWizard(api: WizardApi, existingNames: readonly string[] = []): Wizard {
  let state = initialWizardState();
  const store = writable<WizardState>(state);

  function update(change: Partial<WizardState>): void {
    state = { ...state, ...change };
    store.set(state);
  }

  function goTo(step: StepId): void {
    update({ step, submitError: null, verifyError: null });
  }

  function attempt(): void {
    update({ attempted: { ...state.attempted, [state.step]: true } });
  }

  function nextStep(): StepId {
    return STEPS[Math.min(STEPS.indexOf(state.step) + 1, STEPS.length - 1)] ?? 'finish';
  }

  async function testConnection(): Promise<void> {
    if (isBusy(state)) return;
    const relay = relayOf(state);
    if (relay === null) {
      attempt();
      return;
    }
    const key = checkKey(relay);
    update({ check: { status: 'running', key } });
    let next: CheckState;
    try {
      next = { status: 'done', key, result: await api.checkRelay(relay.relay, relay.relayPassword) };
    } catch (error: unknown) {
      next = { status: 'failed', key, error: toApiError(error) };
    }
    update({ check: next });
  }

  async function pick(title: string, apply: (path: string) => void): Promise<void> {
    if (isBusy(state)) return;
    update({ picking: true, pickError: null });
    try {
      const path = await api.pickFolder(title);
      update({ picking: false });
      if (path !== null) apply(path);
    } catch (error: unknown) {
      update({ picking: false, pickError: toApiError(error).message });
    }
  }

  function setFolder(folder: string): void {
    update(state.nameEdited ? { folder } : { folder, name: folderName(folder) });
  }

  async function verifyAndGo(): Promise<SubmitOutcome> {
    const relay = relayOf(state);
    if (relay === null) return 'invalid';
    const passphrase = state.passphrase;
    update({ verifying: true, verifyError: null });
    try {
      await api.verifyPassphrase(relay.relay, relay.relayPassword, passphrase);
    } catch (error: unknown) {
      const apiError = toApiError(error);
      if (apiError.code === WRONG_PASSPHRASE) {
        update({ verifying: false, wrongPassphrase: passphrase });
        return 'invalid';
      }
      update({ verifying: false, verifyError: apiError });
      return 'failed';
    }
    update({ verifying: false, step: 'finish', submitError: null });
    return 'moved';
  }

  async function finish(): Promise<SubmitOutcome> {
    const setup = setupOf(state);
    if (setup === null) return 'invalid';
    const join = state.intent === 'join';
    update({ submitting: true, submitError: null });
    try {
      const view = join ? await api.joinRepository(setup) : await api.createRepository(setup);
      update({ submitting: false, done: view });
      return 'done';
    } catch (error: unknown) {
      const apiError = toApiError(error);
      if (join && apiError.code === WRONG_PASSPHRASE) {
        update({
          submitting: false,
          step: 'passphrase',
          wrongPassphrase: setup.passphrase,
          attempted: { ...state.attempted, passphrase: true },
        });
        return 'moved';
      }
      update({ submitting: false, submitError: apiError });
      return 'failed';
    }
  }

  async function submit(): Promise<SubmitOutcome> {
    if (isBusy(state) || state.done !== null) return 'busy';
    if (state.step === 'storage' && relayOf(state) !== null) {
      // The fields are fine but not tested yet, or the test failed: Next (or Enter) tests them.
      const check = currentCheck(state);
      if (check.status !== 'done' || !checkPassed(check.result)) {
        await testConnection();
        return 'checked';
      }
    }
    const errors = stepErrors(state, existingNames);
    if (Object.keys(errors).length > 0) {
      attempt();
      return 'invalid';
    }
    switch (state.step) {
      case 'passphrase':
        if (state.intent === 'join') return verifyAndGo();
        goTo(nextStep());
        return 'moved';
      case 'finish':
        return finish();
      default:
        goTo(nextStep());
        return 'moved';
    }
  }

  return {
    subscribe: store.subscribe,
    chooseIntent: (intent) => update({ intent }),
    switchIntent: () => update({ intent: state.intent === 'create' ? 'join' : 'create' }),
    chooseKind: (kind) => update({ kind }),
    setStorageField: (key, value) => update({ storage: { ...state.storage, [key]: value } }),
    setSecure: (secure) => update({ storage: { ...state.storage, secure } }),
    setFlavor: (flavor) => update({ storage: withWebdavFlavor(state.storage, flavor) }),
    testConnection,
    setFolder,
    setName: (name) => update({ name, nameEdited: name.trim() !== '' }),
    pickFolder: () => pick('Choose the folder to keep in sync', setFolder),
    pickStorageFolder: () =>
      pick('Choose the shared storage folder', (path) => update({ storage: { ...state.storage, path } })),
    setPassphrase: (passphrase) => update({ passphrase, verifyError: null }),
    setPassphraseAgain: (passphraseAgain) => update({ passphraseAgain }),
    setAcknowledged: (acknowledged) => update({ acknowledged }),
    async saveRecoveryCopy() {
      const relay = relayOf(state);
      if (relay === null || state.passphrase === '' || state.recovery.status === 'saving') return;
      const passphrase = state.passphrase;
      update({ recovery: { status: 'saving' } });
      try {
        const saved = await api.saveRecoveryCopy(state.name.trim(), relay.relay, passphrase);
        update({ recovery: saved ? { status: 'saved', passphrase } : { status: 'idle' } });
      } catch (error: unknown) {
        update({ recovery: { status: 'failed', message: toApiError(error).message } });
      }
    },
    setOptions: (options) => update({ options }),
    submit,
    back() {
      if (isBusy(state)) return;
      const index = STEPS.indexOf(state.step);
      if (index > 0) goTo(STEPS[index - 1] ?? 'intent');
    },
    hasEnteredData: () => hasEnteredData(state),
  };
}
