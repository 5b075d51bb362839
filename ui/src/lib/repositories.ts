// The state of the "your synced folders" screen, as a small state machine behind a
// Svelte store. The loader is injected so tests need no Tauri.
//
//   loading ──ok──▶ ready(repositories)
//      │
//      └──error──▶ failed(error) ──retry──▶ loading
import { writable, type Readable } from 'svelte/store';
import { toApiError, type ApiError, type RepositorySummary } from './api';

export type RepositoriesState =
  | { readonly status: 'loading' }
  | { readonly status: 'ready'; readonly repositories: readonly RepositorySummary[] }
  | { readonly status: 'failed'; readonly error: ApiError };

export type RepositoriesLoader = () => Promise<readonly RepositorySummary[]>;

export interface RepositoriesStore extends Readable<RepositoriesState> {
  /** Loads the list; resolves once the state is `ready` or `failed`. */
  load(): Promise<void>;
  /** Loads the list again, e.g. after a failure. */
  retry(): Promise<void>;
}

/**
 * Creates the store in the `loading` state; call `load()` to start.
 * If a load is started while another is still running, only the newest one's
 * outcome is kept.
 */
export function createRepositoriesStore(loader: RepositoriesLoader): RepositoriesStore {
  const state = writable<RepositoriesState>({ status: 'loading' });
  let latest = 0;

  async function load(): Promise<void> {
    latest += 1;
    const attempt = latest;
    state.set({ status: 'loading' });
    let next: RepositoriesState;
    try {
      const repositories = await loader();
      next = { status: 'ready', repositories: [...repositories] };
    } catch (error: unknown) {
      next = { status: 'failed', error: toApiError(error) };
    }
    if (attempt === latest) {
      state.set(next);
    }
  }

  return {
    subscribe: state.subscribe,
    load,
    retry: load,
  };
}
