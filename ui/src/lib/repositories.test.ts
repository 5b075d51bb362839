import { get } from 'svelte/store';
import { describe, expect, it, vi } from 'vitest';
import type { RepositoryView } from './api';
import { createRepositoriesStore, removeRepository, upsertRepository } from './repositories';
import { repositoryView } from '../test/fixtures';

const accounts: RepositoryView = repositoryView({ relay: 'webdav://nas.office.example/escale' });
const photos: RepositoryView = repositoryView({ name: 'Photos', folder: '/home/ana/Pictures' });
const scans: RepositoryView = repositoryView({ name: 'Scans', folder: '/srv/scans' });

/** A promise whose outcome the test decides. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('createRepositoriesStore', () => {
  it('starts in the loading state without calling the loader', () => {
    const loader = vi.fn(() => Promise.resolve([accounts]));
    const store = createRepositoriesStore(loader);
    expect(get(store)).toEqual({ status: 'loading' });
    expect(loader).not.toHaveBeenCalled();
  });

  it('goes from loading to ready with the list', async () => {
    const pending = deferred<RepositoryView[]>();
    const store = createRepositoriesStore(() => pending.promise);
    const done = store.load();
    expect(get(store)).toEqual({ status: 'loading' });
    pending.resolve([accounts]);
    await done;
    expect(get(store)).toEqual({ status: 'ready', repositories: [accounts] });
  });

  it('goes from loading to ready with an empty list', async () => {
    const store = createRepositoriesStore(() => Promise.resolve([]));
    await store.load();
    expect(get(store)).toEqual({ status: 'ready', repositories: [] });
  });

  it('goes from loading to failed with the error', async () => {
    const error = { code: 'config_invalid', message: 'The settings file is damaged.' };
    const store = createRepositoriesStore(() => Promise.reject(error));
    await store.load();
    expect(get(store)).toEqual({ status: 'failed', error });
  });

  it('normalises an unexpected failure', async () => {
    const store = createRepositoriesStore(() => Promise.reject(new Error('boom')));
    await store.load();
    const state = get(store);
    expect(state.status).toBe('failed');
    expect(state.status === 'failed' && state.error.code).toBe('unexpected');
  });

  it('retry goes back to loading, calls the loader again and can then succeed', async () => {
    const second = deferred<RepositoryView[]>();
    const loader = vi
      .fn<() => Promise<RepositoryView[]>>()
      .mockRejectedValueOnce({ code: 'relay_unreachable', message: 'The storage cannot be reached.' })
      .mockReturnValueOnce(second.promise);
    const store = createRepositoriesStore(loader);
    await store.load();
    expect(get(store).status).toBe('failed');

    const seen: string[] = [];
    const unsubscribe = store.subscribe((state) => seen.push(state.status));
    const retried = store.retry();
    expect(get(store)).toEqual({ status: 'loading' });
    second.resolve([accounts]);
    await retried;
    unsubscribe();

    expect(loader).toHaveBeenCalledTimes(2);
    expect(seen).toEqual(['failed', 'loading', 'ready']);
    expect(get(store)).toEqual({ status: 'ready', repositories: [accounts] });
  });

  it('keeps only the newest outcome when loads overlap', async () => {
    const first = deferred<RepositoryView[]>();
    const second = deferred<RepositoryView[]>();
    const loader = vi
      .fn<() => Promise<RepositoryView[]>>()
      .mockReturnValueOnce(first.promise)
      .mockReturnValueOnce(second.promise);
    const store = createRepositoriesStore(loader);
    const a = store.load();
    const b = store.retry();
    second.resolve([accounts]);
    await b;
    first.reject({ code: 'late', message: 'This answer came too late.' });
    await a;
    expect(get(store)).toEqual({ status: 'ready', repositories: [accounts] });
  });
});

describe('upsertRepository and removeRepository', () => {
  it('replaces a repository of the same name where it is', () => {
    const syncing = { ...photos, state: 'syncing' as const };
    expect(upsertRepository([accounts, photos, scans], syncing)).toEqual([accounts, syncing, scans]);
  });

  it('adds a new repository at the end', () => {
    expect(upsertRepository([accounts, photos], scans)).toEqual([accounts, photos, scans]);
    expect(upsertRepository([], scans)).toEqual([scans]);
  });

  it('does not change the list it was given', () => {
    const list = [accounts];
    upsertRepository(list, photos);
    upsertRepository(list, { ...accounts, state: 'paused' });
    removeRepository(list, 'Accounts');
    expect(list).toEqual([accounts]);
  });

  it('removes by name and keeps the order of the others', () => {
    expect(removeRepository([accounts, photos, scans], 'Photos')).toEqual([accounts, scans]);
    expect(removeRepository([accounts], 'Nope')).toEqual([accounts]);
  });
});

describe('live updates', () => {
  it('upserts and removes once ready', async () => {
    const store = createRepositoriesStore(() => Promise.resolve([accounts, photos]));
    await store.load();
    store.upsert({ ...accounts, state: 'syncing' });
    store.upsert(scans);
    store.remove('Photos');
    expect(get(store)).toEqual({
      status: 'ready',
      repositories: [{ ...accounts, state: 'syncing' }, scans],
    });
  });

  it('keeps the changes pushed while loading and applies them to the loaded list', async () => {
    const pending = deferred<RepositoryView[]>();
    const store = createRepositoriesStore(() => pending.promise);
    const done = store.load();
    store.upsert({ ...photos, state: 'paused' });
    store.remove('Accounts');
    store.upsert(scans);
    expect(get(store)).toEqual({ status: 'loading' });
    pending.resolve([accounts, photos]);
    await done;
    expect(get(store)).toEqual({
      status: 'ready',
      repositories: [{ ...photos, state: 'paused' }, scans],
    });
  });

  it('ignores changes while failed and forgets pending ones after a failure', async () => {
    const loader = vi
      .fn<() => Promise<RepositoryView[]>>()
      .mockRejectedValueOnce({ code: 'config_invalid', message: 'Damaged.' })
      .mockResolvedValueOnce([accounts]);
    const store = createRepositoriesStore(loader);
    const first = store.load();
    store.upsert(scans);
    await first;
    store.upsert(photos);
    expect(get(store).status).toBe('failed');
    await store.retry();
    expect(get(store)).toEqual({ status: 'ready', repositories: [accounts] });
  });
});
