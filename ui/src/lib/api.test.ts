import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';
import { isApiError, listRepositories, toApiError, UNEXPECTED } from './api';

const invokeMock = vi.mocked(invoke);

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
  beforeEach(() => {
    invokeMock.mockReset();
  });

  it('calls the list_repositories command and returns its list', async () => {
    const list = [{ name: 'Accounts', folder: '/home/ana/Accounts', relay: 'ftp://files.example' }];
    invokeMock.mockResolvedValueOnce(list);
    await expect(listRepositories()).resolves.toEqual(list);
    expect(invokeMock).toHaveBeenCalledWith('list_repositories');
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

  it('rejects with an "unexpected" error when the reply has the wrong shape', async () => {
    invokeMock.mockResolvedValueOnce([{ name: 'Accounts', folder: 7 }]);
    await expect(listRepositories()).rejects.toMatchObject({ code: 'unexpected' });
    invokeMock.mockResolvedValueOnce({ repositories: [] });
    await expect(listRepositories()).rejects.toMatchObject({ code: 'unexpected' });
  });
});
