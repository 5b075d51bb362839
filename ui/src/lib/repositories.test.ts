import { get } from 'svelte/store';
import { describe, expect, it, vi } from 'vitest';
import type { RepositorySummary } from './api';
import { createRepositoriesStore } from './repositories';

const accounts: RepositorySummary = {
  name: 'Accounts',
  folder: '/home/ana/Accounts',
  relay: 'webdav://nas.office.example/escale',
};

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
    const pending = deferred<RepositorySummary[]>();
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
    const second = deferred<RepositorySummary[]>();
    const loader = vi
      .fn<() => Promise<RepositorySummary[]>>()
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
    const first = deferred<RepositorySummary[]>();
    const second = deferred<RepositorySummary[]>();
    const loader = vi
      .fn<() => Promise<RepositorySummary[]>>()
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
