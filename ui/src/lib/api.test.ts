import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import * as api from './api';
import { isApiError, listRepositories, toApiError, UNEXPECTED } from './api';
import { computerView, defaultOptions, failedCheck, passedCheck, repositoryView } from '../test/fixtures';

const invokeMock = vi.mocked(invoke);
const listenMock = vi.mocked(listen);

beforeEach(() => {
  invokeMock.mockReset();
  listenMock.mockReset();
});

describe('toApiError', () => {
  it('keeps a well-formed error from the desktop app, and only its code and message', () => {
    const error = { code: 'config_invalid', message: 'The settings file could not be read.', extra: 1 };
    expect(toApiError(error)).toEqual({
      code: 'config_invalid',
      message: 'The settings file could not be read.',
    });
  });

  it.each([
    ['a thrown Error', new TypeError("Cannot read properties of undefined (reading 'invoke')")],
    ['a bare string', 'command list_repositories not found'],
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['an object without a message', { code: 'config_invalid' }],
    ['an object without a code', { message: 'Something broke.' }],
    ['an object with a non-string code', { code: 3, message: 'Something broke.' }],
    ['an object with empty strings', { code: '', message: '  ' }],
  ])('turns %s into an "unexpected" error with a plain message', (_label, value) => {
    const error = toApiError(value);
    expect(error.code).toBe(UNEXPECTED);
    expect(error.code).toBe('unexpected');
    expect(error.message).toMatch(/^Something unexpected went wrong/);
    expect(isApiError(error)).toBe(true);
  });
});

describe('listRepositories', () => {
  it('calls the list_repositories command and returns its list', async () => {
    const list = [repositoryView(), repositoryView({ name: 'Photos', state: 'syncing' })];
    invokeMock.mockResolvedValueOnce(list);
    await expect(listRepositories()).resolves.toEqual(list);
    expect(invokeMock).toHaveBeenCalledWith('list_repositories');
  });

  it('accepts a repository with progress, problem, usage and activity', async () => {
    const view = repositoryView({
      state: 'syncing',
      progress: {
        phase: 'receiving',
        filesDone: 1,
        filesTotal: 3,
        bytesDone: 10,
        bytesTotal: 30,
        current: 'a.txt',
        bytesPerSecond: null,
      },
      problem: { code: 'relay_full', message: 'The storage is full.' },
      lastSync: 1_700_000_000_000,
      usage: { used: 5, quota: null },
      activity: [{ at: 1, kind: 'conflict', text: '1 conflict', path: 'a (conflict).txt' }],
    });
    invokeMock.mockResolvedValueOnce([view]);
    await expect(listRepositories()).resolves.toEqual([view]);
  });

  it('rejects with the error the command rejected with', async () => {
    invokeMock.mockRejectedValueOnce({ code: 'config_invalid', message: 'The settings file is damaged.' });
    await expect(listRepositories()).rejects.toEqual({
      code: 'config_invalid',
      message: 'The settings file is damaged.',
    });
  });

  it('rejects with an "unexpected" error when invoke throws something else', async () => {
    invokeMock.mockRejectedValueOnce(new Error('no IPC here'));
    await expect(listRepositories()).rejects.toMatchObject({ code: 'unexpected' });
  });

  it.each([
    ['a list with a wrong field', [{ name: 'Accounts', folder: 7 }]],
    ['an object instead of a list', { repositories: [] }],
    ['an unknown state', [repositoryView({ state: 'sleeping' as never })]],
    ['a negative size', [repositoryView({ usage: { used: -1, quota: null } })]],
    ['a bad activity', [repositoryView({ activity: [{ at: 1, kind: 'lost', text: '', path: null } as never] })]],
  ])('rejects with an "unexpected" error for %s', async (_label, reply) => {
    invokeMock.mockResolvedValueOnce(reply);
    await expect(listRepositories()).rejects.toMatchObject({ code: 'unexpected' });
  });
});

describe('the other commands', () => {
  const setup = {
    name: 'Accounts',
    folder: '/home/ana/Accounts',
    relay: 'ftp://ana@files.example/escale',
    relayPassword: 'secret',
    passphrase: 'correct horse battery staple',
    options: defaultOptions(),
  };

  it.each<[string, () => Promise<unknown>, string, unknown, unknown]>([
    ['listComputers', () => api.listComputers('Accounts'), 'list_computers', { name: 'Accounts' }, [computerView()]],
    [
      'checkRelay',
      () => api.checkRelay('ftp://ana@h/x', 'pw'),
      'check_relay',
      { relay: 'ftp://ana@h/x', relayPassword: 'pw' },
      failedCheck('ftp://ana@h/x'),
    ],
    ['createRepository', () => api.createRepository(setup), 'create_repository', { setup }, repositoryView()],
    ['joinRepository', () => api.joinRepository(setup), 'join_repository', { setup }, repositoryView()],
    ['pickFolder', () => api.pickFolder('Choose'), 'pick_folder', { title: 'Choose' }, '/home/ana/x'],
    [
      'saveRecoveryCopy',
      () => api.saveRecoveryCopy('Accounts', 'file:///x', 'pp'),
      'save_recovery_copy',
      { name: 'Accounts', relay: 'file:///x', passphrase: 'pp' },
      true,
    ],
    ['repositoryOptions', () => api.repositoryOptions('Accounts'), 'repository_options', { name: 'Accounts' }, defaultOptions()],
    [
      'updateOptions',
      () => api.updateOptions('Accounts', defaultOptions({ quota: 8_000_000 })),
      'update_options',
      { name: 'Accounts', options: defaultOptions({ quota: 8_000_000 }) },
      repositoryView(),
    ],
    [
      'setAppSettings',
      () => api.setAppSettings({ notifications: false, startAtLogin: true }),
      'set_app_settings',
      { settings: { notifications: false, startAtLogin: true } },
      { notifications: false, startAtLogin: true },
    ],
  ])('%s calls %s with its arguments and returns the result', async (_label, run, command, args, reply) => {
    invokeMock.mockResolvedValueOnce(reply);
    await expect(run()).resolves.toEqual(reply);
    expect(invokeMock).toHaveBeenCalledWith(command, args);
  });

  it.each<[string, () => Promise<unknown>, string, unknown]>([
    ['verifyPassphrase', () => api.verifyPassphrase('file:///x', null, 'pp'), 'verify_passphrase', { relay: 'file:///x', relayPassword: null, passphrase: 'pp' }],
    ['pauseRepository', () => api.pauseRepository('A'), 'pause_repository', { name: 'A' }],
    ['resumeRepository', () => api.resumeRepository('A'), 'resume_repository', { name: 'A' }],
    ['syncNow', () => api.syncNow('A'), 'sync_now', { name: 'A' }],
    ['removeRepository', () => api.removeRepository('A'), 'remove_repository', { name: 'A' }],
    ['openFolder', () => api.openFolder('A'), 'open_folder', { name: 'A', path: null }],
    ['openFolder with a path', () => api.openFolder('A', 'x/y.txt'), 'open_folder', { name: 'A', path: 'x/y.txt' }],
  ])('%s calls %s and resolves to nothing', async (_label, run, command, args) => {
    invokeMock.mockResolvedValueOnce(null);
    await expect(run()).resolves.toBeUndefined();
    expect(invokeMock).toHaveBeenCalledWith(command, args);
  });

  it.each<[string, () => Promise<unknown>, string]>([
    ['pauseAll', () => api.pauseAll(), 'pause_all'],
    ['resumeAll', () => api.resumeAll(), 'resume_all'],
    ['openLogFolder', () => api.openLogFolder(), 'open_log_folder'],
  ])('%s calls %s without arguments', async (_label, run, command) => {
    invokeMock.mockResolvedValueOnce(null);
    await expect(run()).resolves.toBeUndefined();
    expect(invokeMock).toHaveBeenCalledWith(command);
  });

  it('appSettings calls app_settings without arguments', async () => {
    invokeMock.mockResolvedValueOnce({ notifications: true, startAtLogin: false });
    await expect(api.appSettings()).resolves.toEqual({ notifications: true, startAtLogin: false });
    expect(invokeMock).toHaveBeenCalledWith('app_settings');
  });

  it('pickFolder resolves to null when the picker is cancelled', async () => {
    invokeMock.mockResolvedValueOnce(null);
    await expect(api.pickFolder('Choose')).resolves.toBeNull();
  });

  it('checkRelay accepts a passed check', async () => {
    invokeMock.mockResolvedValueOnce(passedCheck('file:///x', true));
    await expect(api.checkRelay('file:///x', null)).resolves.toMatchObject({ holdsRepository: true });
  });

  it('verifyPassphrase rejects with wrong_passphrase as the command did', async () => {
    invokeMock.mockRejectedValueOnce({ code: 'wrong_passphrase', message: 'Wrong passphrase.' });
    await expect(api.verifyPassphrase('file:///x', null, 'pp')).rejects.toEqual({
      code: api.WRONG_PASSPHRASE,
      message: 'Wrong passphrase.',
    });
  });

  it.each<[string, () => Promise<unknown>, unknown]>([
    ['listComputers', () => api.listComputers('A'), [{ name: 'x', presence: 'gone' }]],
    ['checkRelay', () => api.checkRelay('file:///x', null), { address: 'x', steps: [{ outcome: 'maybe' }] }],
    ['repositoryOptions', () => api.repositoryOptions('A'), { mode: 'both-ways' }],
    ['appSettings', () => api.appSettings(), { notifications: 'yes' }],
    ['saveRecoveryCopy', () => api.saveRecoveryCopy('A', 'file:///x', 'pp'), 'saved'],
    ['syncNow', () => api.syncNow('A'), { queued: true }],
  ])('%s rejects with an "unexpected" error for a reply of the wrong shape', async (_label, run, reply) => {
    invokeMock.mockResolvedValueOnce(reply);
    await expect(run()).rejects.toMatchObject({ code: 'unexpected' });
  });

  it('every command turns a non-ApiError rejection into an "unexpected" error', async () => {
    invokeMock.mockRejectedValue('boom');
    await expect(api.syncNow('A')).rejects.toMatchObject({ code: 'unexpected' });
    await expect(api.createRepository(setup)).rejects.toMatchObject({ code: 'unexpected' });
  });
});

describe('events', () => {
  type Handler = (event: { payload: unknown }) => void;

  function captureHandler(): { handler: () => Handler; unlisten: ReturnType<typeof vi.fn> } {
    let captured: Handler | undefined;
    const unlisten = vi.fn();
    listenMock.mockImplementationOnce(async (_name, handler) => {
      captured = handler as unknown as Handler;
      return unlisten;
    });
    return {
      handler: () => {
        if (!captured) throw new Error('listen was not called');
        return captured;
      },
      unlisten,
    };
  }

  it('onRepository passes well-formed repositories and ignores the rest', async () => {
    const { handler, unlisten } = captureHandler();
    const callback = vi.fn();
    const stop = await api.onRepository(callback);
    expect(listenMock).toHaveBeenCalledWith('repository', expect.any(Function));

    handler()({ payload: repositoryView({ state: 'syncing' }) });
    handler()({ payload: { name: 'half a view' } });
    expect(callback).toHaveBeenCalledTimes(1);
    expect(callback).toHaveBeenCalledWith(repositoryView({ state: 'syncing' }));

    stop();
    expect(unlisten).toHaveBeenCalled();
  });

  it('onRepositoryRemoved passes the name', async () => {
    const { handler } = captureHandler();
    const callback = vi.fn();
    await api.onRepositoryRemoved(callback);
    expect(listenMock).toHaveBeenCalledWith('repository-removed', expect.any(Function));
    handler()({ payload: { name: 'Photos' } });
    handler()({ payload: 'Photos' });
    expect(callback).toHaveBeenCalledTimes(1);
    expect(callback).toHaveBeenCalledWith('Photos');
  });

  it('rejects with an ApiError when listening fails', async () => {
    listenMock.mockRejectedValueOnce(new Error('no IPC'));
    await expect(api.onRepository(() => {})).rejects.toMatchObject({ code: 'unexpected' });
  });
});
