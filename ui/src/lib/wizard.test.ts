import { get } from 'svelte/store';
import { describe, expect, it, vi } from 'vitest';
import type { RelayCheck, RepositoryView } from './api';
import { addRule, updateRule } from './options';
import {
  createWizard,
  folderName,
  hasEnteredData,
  initialWizardState,
  isFullPath,
  pathsOverlap,
  stepErrors,
  stepNumber,
  stepTitle,
  visibleErrors,
  WRONG_PASSPHRASE_MESSAGE,
  type Wizard,
  type WizardApi,
} from './wizard';
import { defaultOptions, failedCheck, passedCheck, repositoryView } from '../test/fixtures';

const RELAY = 'ftps://ana@files.example.com/escale';
const PASSPHRASE = 'correct horse battery staple';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function fakeApi(overrides: Partial<WizardApi> = {}) {
  const api = {
    checkRelay: vi.fn<WizardApi['checkRelay']>(async (relay) => passedCheck(relay, null)),
    verifyPassphrase: vi.fn<WizardApi['verifyPassphrase']>(async () => undefined),
    createRepository: vi.fn<WizardApi['createRepository']>(async (setup) => repositoryView({ name: setup.name })),
    joinRepository: vi.fn<WizardApi['joinRepository']>(async (setup) => repositoryView({ name: setup.name })),
    pickFolder: vi.fn<WizardApi['pickFolder']>(async () => '/home/ana/Reports'),
    saveRecoveryCopy: vi.fn<WizardApi['saveRecoveryCopy']>(async () => true),
  };
  // Tests override with mocks too.
  return { ...api, ...overrides } as typeof api;
}

function fillFtp(wizard: Wizard): void {
  wizard.chooseKind('ftp');
  wizard.setStorageField('host', 'files.example.com');
  wizard.setStorageField('user', 'ana');
  wizard.setStorageField('password', 'ftp-secret');
  wizard.setStorageField('folder', '/escale');
}

/** Walks a wizard to the passphrase step with a passed check. */
async function toPassphrase(wizard: Wizard, intent: 'create' | 'join'): Promise<void> {
  wizard.chooseIntent(intent);
  expect(await wizard.submit()).toBe('moved');
  fillFtp(wizard);
  await wizard.testConnection();
  expect(await wizard.submit()).toBe('moved');
  wizard.setFolder('/home/ana/Reports');
  expect(await wizard.submit()).toBe('moved');
  expect(get(wizard).step).toBe('passphrase');
}

describe('steps', () => {
  it('has five numbered steps with titles that follow the choice', () => {
    expect(stepNumber('intent')).toBe(1);
    expect(stepNumber('finish')).toBe(5);
    expect(stepTitle('passphrase', 'create')).toBe('Choose a passphrase');
    expect(stepTitle('passphrase', 'join')).toBe('Type the passphrase');
    expect(stepTitle('storage', null)).toBe('Where will the files pass through?');
  });

  it('starts on the first step with nothing chosen', () => {
    const wizard = createWizard(fakeApi());
    expect(get(wizard)).toEqual(initialWizardState());
    expect(get(wizard).step).toBe('intent');
  });

  it('asks to choose before going on, and shows it only after trying', async () => {
    const wizard = createWizard(fakeApi());
    expect(visibleErrors(get(wizard), [])).toEqual({});
    expect(await wizard.submit()).toBe('invalid');
    expect(get(wizard).step).toBe('intent');
    expect(visibleErrors(get(wizard), [])).toEqual({ intent: 'Choose one of the two.' });
    wizard.chooseIntent('create');
    expect(visibleErrors(get(wizard), [])).toEqual({});
    expect(await wizard.submit()).toBe('moved');
    expect(get(wizard).step).toBe('storage');
  });

  it('goes back one step at a time, keeping what was typed, and not before the first', async () => {
    const wizard = createWizard(fakeApi());
    await toPassphrase(wizard, 'create');
    wizard.back();
    expect(get(wizard).step).toBe('folder');
    expect(get(wizard).folder).toBe('/home/ana/Reports');
    wizard.back();
    wizard.back();
    wizard.back();
    expect(get(wizard).step).toBe('intent');
    expect(get(wizard).intent).toBe('create');
    expect(get(wizard).storage.host).toBe('files.example.com');
  });
});

describe('the storage step', () => {
  it('asks for a kind of storage, then for its fields', async () => {
    const api = fakeApi();
    const wizard = createWizard(api);
    wizard.chooseIntent('create');
    await wizard.submit();
    expect(await wizard.submit()).toBe('invalid');
    expect(visibleErrors(get(wizard), [])).toEqual({ kind: 'Choose where the files will pass through.' });
    wizard.chooseKind('local');
    expect(await wizard.submit()).toBe('invalid');
    expect(visibleErrors(get(wizard), []).path).toMatch(/full path/);
    expect(api.checkRelay).not.toHaveBeenCalled();
  });

  it('does not test invalid fields, and shows why', async () => {
    const api = fakeApi();
    const wizard = createWizard(api);
    wizard.chooseIntent('create');
    await wizard.submit();
    wizard.chooseKind('ftp');
    await wizard.testConnection();
    expect(api.checkRelay).not.toHaveBeenCalled();
    expect(visibleErrors(get(wizard), []).host).toBe('Write the name or address of the server.');
  });

  it('tests the connection with the address and the password apart, busy meanwhile', async () => {
    const pending = deferred<RelayCheck>();
    const api = fakeApi({ checkRelay: vi.fn(() => pending.promise) });
    const wizard = createWizard(api);
    wizard.chooseIntent('create');
    await wizard.submit();
    fillFtp(wizard);
    const testing = wizard.testConnection();
    expect(get(wizard).check.status).toBe('running');
    expect(api.checkRelay).toHaveBeenCalledWith(RELAY, 'ftp-secret');
    expect(await wizard.submit()).toBe('busy');
    wizard.back();
    expect(get(wizard).step).toBe('storage');
    pending.resolve(passedCheck(RELAY));
    await testing;
    expect(get(wizard).check).toMatchObject({ status: 'done', result: { address: RELAY } });
    expect(await wizard.submit()).toBe('moved');
    expect(get(wizard).step).toBe('folder');
  });

  it('runs the test when Next is pressed before it, and stays on a failed test', async () => {
    const api = fakeApi({ checkRelay: vi.fn(async (relay: string) => failedCheck(relay)) });
    const wizard = createWizard(api);
    wizard.chooseIntent('create');
    await wizard.submit();
    fillFtp(wizard);
    expect(await wizard.submit()).toBe('checked');
    expect(api.checkRelay).toHaveBeenCalledTimes(1);
    expect(get(wizard).step).toBe('storage');
    expect(stepErrors(get(wizard), []).check).toMatch(/Test the connection first/);
    // Pressing Next again tests again.
    expect(await wizard.submit()).toBe('checked');
    expect(api.checkRelay).toHaveBeenCalledTimes(2);
  });

  it('needs a new test after a field changes', async () => {
    const api = fakeApi();
    const wizard = createWizard(api);
    wizard.chooseIntent('create');
    await wizard.submit();
    fillFtp(wizard);
    await wizard.testConnection();
    wizard.setStorageField('password', 'another');
    expect(await wizard.submit()).toBe('checked');
    expect(api.checkRelay).toHaveBeenLastCalledWith(RELAY, 'another');
    expect(get(wizard).step).toBe('storage');
    wizard.setStorageField('password', 'ftp-secret');
    // Back to what was tested first: that test stands for it no more, the last one was for "another".
    expect(await wizard.submit()).toBe('checked');
    expect(await wizard.submit()).toBe('moved');
  });

  it('shows the error when the check itself cannot run', async () => {
    const api = fakeApi({ checkRelay: vi.fn().mockRejectedValue({ code: 'internal', message: 'The check crashed.' }) });
    const wizard = createWizard(api);
    wizard.chooseIntent('create');
    await wizard.submit();
    fillFtp(wizard);
    await wizard.testConnection();
    expect(get(wizard).check).toMatchObject({ status: 'failed', error: { message: 'The check crashed.' } });
    expect(get(wizard).step).toBe('storage');
  });

  it('offers to join when the storage already holds a shared folder', async () => {
    const api = fakeApi({ checkRelay: vi.fn(async (relay: string) => passedCheck(relay, true)) });
    const wizard = createWizard(api);
    wizard.chooseIntent('create');
    await wizard.submit();
    fillFtp(wizard);
    await wizard.testConnection();
    expect(visibleErrors(get(wizard), []).check).toMatch(/already holds a shared folder/);
    expect(await wizard.submit()).toBe('invalid');
    expect(get(wizard).step).toBe('storage');
    wizard.switchIntent();
    expect(get(wizard).intent).toBe('join');
    expect(visibleErrors(get(wizard), [])).toEqual({});
    expect(await wizard.submit()).toBe('moved');
  });

  it('offers to create when the storage to join is empty', async () => {
    const wizard = createWizard(fakeApi({ checkRelay: vi.fn(async (relay: string) => passedCheck(relay, false)) }));
    wizard.chooseIntent('join');
    await wizard.submit();
    fillFtp(wizard);
    await wizard.testConnection();
    expect(visibleErrors(get(wizard), []).check).toMatch(/does not hold a shared folder yet/);
    wizard.switchIntent();
    expect(get(wizard).intent).toBe('create');
    expect(await wizard.submit()).toBe('moved');
  });

  it('goes on when the storage cannot tell whether it holds a shared folder', async () => {
    const wizard = createWizard(fakeApi());
    wizard.chooseIntent('join');
    await wizard.submit();
    fillFtp(wizard);
    await wizard.testConnection();
    expect(await wizard.submit()).toBe('moved');
  });

  it('picks a shared storage folder', async () => {
    const api = fakeApi({ pickFolder: vi.fn(async () => '\\\\nas\\shared\\escale') });
    const wizard = createWizard(api);
    wizard.chooseKind('local');
    await wizard.pickStorageFolder();
    expect(get(wizard).storage.path).toBe('\\\\nas\\shared\\escale');
    expect(api.pickFolder).toHaveBeenCalledWith('Choose the shared storage folder');
  });

  it('fills in Yandex Disk’s server', () => {
    const wizard = createWizard(fakeApi());
    wizard.chooseKind('webdav');
    wizard.setFlavor('yandex');
    expect(get(wizard).storage.host).toBe('webdav.yandex.ru');
    expect(hasEnteredData(get(wizard))).toBe(false);
  });
});

describe('the folder step', () => {
  async function toFolder(wizard: Wizard): Promise<void> {
    wizard.chooseIntent('create');
    await wizard.submit();
    fillFtp(wizard);
    await wizard.testConnection();
    await wizard.submit();
  }

  it('names the folder after its last part until a name is typed', async () => {
    const wizard = createWizard(fakeApi());
    await toFolder(wizard);
    wizard.setFolder('C:\\Users\\ana\\Documents\\Reports\\');
    expect(get(wizard).name).toBe('Reports');
    wizard.setName('Office reports');
    wizard.setFolder('/home/ana/Other');
    expect(get(wizard).name).toBe('Office reports');
    wizard.setName('');
    wizard.setFolder('/home/ana/Other');
    expect(get(wizard).name).toBe('Other');
  });

  it('uses the folder picker and keeps the typed path when it is cancelled', async () => {
    const api = fakeApi();
    const wizard = createWizard(api);
    await toFolder(wizard);
    await wizard.pickFolder();
    expect(api.pickFolder).toHaveBeenCalledWith('Choose the folder to keep in sync');
    expect(get(wizard).folder).toBe('/home/ana/Reports');
    expect(get(wizard).name).toBe('Reports');
    api.pickFolder.mockResolvedValueOnce(null);
    await wizard.pickFolder();
    expect(get(wizard).folder).toBe('/home/ana/Reports');
    api.pickFolder.mockRejectedValueOnce({ code: 'dialog', message: 'The folder picker could not open.' });
    await wizard.pickFolder();
    expect(get(wizard).pickError).toBe('The folder picker could not open.');
    expect(get(wizard).picking).toBe(false);
  });

  it('asks for a full path and a free, valid name', async () => {
    const wizard = createWizard(fakeApi(), ['Accounts']);
    await toFolder(wizard);
    expect(await wizard.submit()).toBe('invalid');
    expect(visibleErrors(get(wizard), ['Accounts'])).toEqual({
      folder: 'Write the folder’s full path, or press Choose… to pick it.',
      name: 'Give the folder a name.',
    });
    wizard.setFolder('Documents/Reports');
    expect(stepErrors(get(wizard), ['Accounts']).folder).toMatch(/full path, like/);
    wizard.setFolder('/home/ana/accounts');
    expect(stepErrors(get(wizard), ['Accounts']).name).toMatch(/already has this name/);
    wizard.setName('A/B');
    expect(stepErrors(get(wizard), ['Accounts']).name).toMatch(/cannot contain/);
    wizard.setName('x'.repeat(65));
    expect(stepErrors(get(wizard), ['Accounts']).name).toMatch(/64 characters/);
    wizard.setName('  Books  ');
    expect(stepErrors(get(wizard), ['Accounts'])).toEqual({});
  });

  it('keeps the folder apart from a local shared storage folder', () => {
    const state = { ...initialWizardState(), step: 'folder' as const, kind: 'local' as const, name: 'x' };
    state.storage = { ...state.storage, path: 'Z:\\Escale' };
    expect(stepErrors({ ...state, folder: 'z:/escale/mine' }, []).folder).toMatch(/must be separate/);
    expect(stepErrors({ ...state, folder: 'Z:\\' }, []).folder).toMatch(/must be separate/);
    expect(stepErrors({ ...state, folder: 'C:\\Escale' }, []).folder).toBeUndefined();
  });

  it('helpers: folderName, isFullPath, pathsOverlap', () => {
    expect(folderName('/home/ana/Reports/')).toBe('Reports');
    expect(folderName('C:\\')).toBe('');
    expect(folderName('\\\\nas\\share\\Q3: "final"?.')).toBe('Q3 final');
    expect(folderName('')).toBe('');
    expect(isFullPath('C:\\x')).toBe(true);
    expect(isFullPath('c:/x')).toBe(true);
    expect(isFullPath('\\\\nas\\x')).toBe(true);
    expect(isFullPath('/x')).toBe(true);
    expect(isFullPath('x/y')).toBe(false);
    expect(isFullPath('C:x')).toBe(false);
    expect(pathsOverlap('/a/b', '/a/b/c')).toBe(true);
    expect(pathsOverlap('/a/bc', '/a/b')).toBe(false);
    expect(pathsOverlap('', '/a')).toBe(false);
  });
});

describe('the passphrase step, creating', () => {
  it('asks for a strong enough passphrase, twice, and the acknowledgement', async () => {
    const wizard = createWizard(fakeApi());
    await toPassphrase(wizard, 'create');
    expect(await wizard.submit()).toBe('invalid');
    expect(visibleErrors(get(wizard), [])).toEqual({
      passphrase: 'Choose a passphrase.',
      passphraseAgain: 'Type the passphrase again.',
      acknowledged: 'Tick this box to go on.',
    });
    wizard.setPassphrase('short');
    expect(stepErrors(get(wizard), []).passphrase).toMatch(/too short/);
    wizard.setPassphrase('password1');
    expect(stepErrors(get(wizard), []).passphrase).toMatch(/too easy to guess/);
    wizard.setPassphrase(PASSPHRASE);
    wizard.setPassphraseAgain('correct horse battery stable');
    expect(stepErrors(get(wizard), []).passphraseAgain).toBe('The two passphrases are not the same.');
    wizard.setPassphraseAgain(PASSPHRASE);
    wizard.setAcknowledged(true);
    expect(stepErrors(get(wizard), [])).toEqual({});
    expect(await wizard.submit()).toBe('moved');
    expect(get(wizard).step).toBe('finish');
  });

  it('saves a recovery copy, which stops counting when the passphrase changes', async () => {
    const api = fakeApi();
    const wizard = createWizard(api);
    await toPassphrase(wizard, 'create');
    await wizard.saveRecoveryCopy();
    expect(api.saveRecoveryCopy).not.toHaveBeenCalled();
    wizard.setPassphrase(PASSPHRASE);
    await wizard.saveRecoveryCopy();
    expect(api.saveRecoveryCopy).toHaveBeenCalledWith('Reports', RELAY, PASSPHRASE);
    expect(get(wizard).recovery).toEqual({ status: 'saved', passphrase: PASSPHRASE });
    api.saveRecoveryCopy.mockResolvedValueOnce(false);
    await wizard.saveRecoveryCopy();
    expect(get(wizard).recovery).toEqual({ status: 'idle' });
    api.saveRecoveryCopy.mockRejectedValueOnce({ code: 'io', message: 'The file could not be written.' });
    await wizard.saveRecoveryCopy();
    expect(get(wizard).recovery).toEqual({ status: 'failed', message: 'The file could not be written.' });
  });
});

describe('the passphrase step, joining', () => {
  it('checks the passphrase against the storage before going on', async () => {
    const api = fakeApi();
    const wizard = createWizard(api);
    await toPassphrase(wizard, 'join');
    expect(await wizard.submit()).toBe('invalid');
    expect(visibleErrors(get(wizard), [])).toEqual({ passphrase: 'Type the passphrase of the shared folder.' });
    expect(api.verifyPassphrase).not.toHaveBeenCalled();
    wizard.setPassphrase('weak');
    expect(await wizard.submit()).toBe('moved');
    expect(api.verifyPassphrase).toHaveBeenCalledWith(RELAY, 'ftp-secret', 'weak');
    expect(get(wizard).step).toBe('finish');
  });

  it('stays on the step with a clear message for a wrong passphrase, until it changes', async () => {
    const pending = deferred<void>();
    const api = fakeApi({ verifyPassphrase: vi.fn(() => pending.promise) });
    const wizard = createWizard(api);
    await toPassphrase(wizard, 'join');
    wizard.setPassphrase('not it');
    const submitting = wizard.submit();
    expect(get(wizard).verifying).toBe(true);
    expect(await wizard.submit()).toBe('busy');
    pending.reject({ code: 'wrong_passphrase', message: 'The passphrase is wrong.' });
    expect(await submitting).toBe('invalid');
    const state = get(wizard);
    expect(state.verifying).toBe(false);
    expect(state.step).toBe('passphrase');
    expect(visibleErrors(state, []).passphrase).toBe(WRONG_PASSPHRASE_MESSAGE);
    expect(WRONG_PASSPHRASE_MESSAGE).toBe(
      'This passphrase does not open the shared folder. Check it with the person who set it up.',
    );
    wizard.setPassphrase('not it either');
    expect(stepErrors(get(wizard), [])).toEqual({});
    api.verifyPassphrase.mockResolvedValueOnce(undefined);
    expect(await wizard.submit()).toBe('moved');
  });

  it('shows another error as such and stays', async () => {
    const api = fakeApi({
      verifyPassphrase: vi.fn().mockRejectedValue({ code: 'relay_unreachable', message: 'The storage cannot be reached.' }),
    });
    const wizard = createWizard(api);
    await toPassphrase(wizard, 'join');
    wizard.setPassphrase(PASSPHRASE);
    expect(await wizard.submit()).toBe('failed');
    expect(get(wizard).verifyError).toEqual({ code: 'relay_unreachable', message: 'The storage cannot be reached.' });
    expect(get(wizard).step).toBe('passphrase');
    expect(stepErrors(get(wizard), [])).toEqual({});
    wizard.setPassphrase(`${PASSPHRASE}!`);
    expect(get(wizard).verifyError).toBeNull();
  });
});

describe('the finish step', () => {
  async function toFinish(wizard: Wizard, intent: 'create' | 'join'): Promise<void> {
    await toPassphrase(wizard, intent);
    wizard.setPassphrase(PASSPHRASE);
    wizard.setPassphraseAgain(PASSPHRASE);
    wizard.setAcknowledged(true);
    expect(await wizard.submit()).toBe('moved');
    expect(get(wizard).step).toBe('finish');
  }

  it('creates the shared folder with everything gathered, busy meanwhile', async () => {
    const pending = deferred<RepositoryView>();
    const api = fakeApi({ createRepository: vi.fn(() => pending.promise) });
    const wizard = createWizard(api);
    await toFinish(wizard, 'create');
    let options = addRule(get(wizard).options);
    options = updateRule(options, options.rules[0]?.id ?? 0, { path: 'Drafts/' });
    wizard.setOptions({ ...options, mode: 'send-only', quotaAmount: '5', quotaUnit: 'GB', exclude: '*.tmp' });
    const submitting = wizard.submit();
    expect(get(wizard).submitting).toBe(true);
    expect(await wizard.submit()).toBe('busy');
    expect(api.createRepository).toHaveBeenCalledWith({
      name: 'Reports',
      folder: '/home/ana/Reports',
      relay: RELAY,
      relayPassword: 'ftp-secret',
      passphrase: PASSPHRASE,
      options: defaultOptions({
        mode: 'send-only',
        quota: 5_000_000_000,
        exclude: ['*.tmp'],
        rules: [{ path: 'Drafts/', mode: 'ignore' }],
      }),
    });
    const view = repositoryView({ name: 'Reports' });
    pending.resolve(view);
    expect(await submitting).toBe('done');
    expect(get(wizard).done).toEqual(view);
    expect(get(wizard).submitting).toBe(false);
    expect(api.joinRepository).not.toHaveBeenCalled();
  });

  it('joins when joining', async () => {
    const api = fakeApi();
    const wizard = createWizard(api);
    await toFinish(wizard, 'join');
    expect(await wizard.submit()).toBe('done');
    expect(api.joinRepository).toHaveBeenCalledTimes(1);
    expect(api.createRepository).not.toHaveBeenCalled();
  });

  it('does not start with invalid options', async () => {
    const api = fakeApi();
    const wizard = createWizard(api);
    await toFinish(wizard, 'create');
    wizard.setOptions({ ...get(wizard).options, quotaAmount: '1', quotaUnit: 'MB' });
    expect(await wizard.submit()).toBe('invalid');
    expect(visibleErrors(get(wizard), [])).toEqual({ quota: 'The limit must be at least 8 MB.' });
    expect(api.createRepository).not.toHaveBeenCalled();
  });

  it('shows a failure and lets it be tried again', async () => {
    const api = fakeApi({
      createRepository: vi
        .fn()
        .mockRejectedValueOnce({ code: 'relay_full', message: 'The shared storage is full.' })
        .mockResolvedValueOnce(repositoryView({ name: 'Reports' })),
    });
    const wizard = createWizard(api);
    await toFinish(wizard, 'create');
    expect(await wizard.submit()).toBe('failed');
    expect(get(wizard).submitError).toEqual({ code: 'relay_full', message: 'The shared storage is full.' });
    expect(get(wizard).step).toBe('finish');
    expect(await wizard.submit()).toBe('done');
    expect(get(wizard).submitError).toBeNull();
  });

  it('goes back to the passphrase when joining finds it wrong after all', async () => {
    const api = fakeApi({
      joinRepository: vi.fn().mockRejectedValue({ code: 'wrong_passphrase', message: 'Wrong passphrase.' }),
    });
    const wizard = createWizard(api);
    await toFinish(wizard, 'join');
    expect(await wizard.submit()).toBe('moved');
    expect(get(wizard).step).toBe('passphrase');
    expect(visibleErrors(get(wizard), []).passphrase).toBe(WRONG_PASSPHRASE_MESSAGE);
    expect(get(wizard).submitError).toBeNull();
  });

  it('does nothing more once done', async () => {
    const api = fakeApi();
    const wizard = createWizard(api);
    await toFinish(wizard, 'create');
    await wizard.submit();
    expect(await wizard.submit()).toBe('busy');
    expect(api.createRepository).toHaveBeenCalledTimes(1);
  });
});

describe('leaving', () => {
  it('knows when something was typed', () => {
    const wizard = createWizard(fakeApi());
    expect(wizard.hasEnteredData()).toBe(false);
    wizard.chooseIntent('create');
    wizard.chooseKind('ftp');
    expect(wizard.hasEnteredData()).toBe(false);
    wizard.setStorageField('host', 'h');
    expect(wizard.hasEnteredData()).toBe(true);
    wizard.setStorageField('host', '');
    wizard.setOptions({ ...get(wizard).options, mode: 'receive-only' });
    expect(wizard.hasEnteredData()).toBe(true);
  });
});
