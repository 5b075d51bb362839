// The state of the "your synced folders" screen, as a small state machine behind a
// Svelte store. The loader is injected so tests need no Tauri.
//
//   loading ──ok──▶ ready(repositories) ◀── upsert / remove (live events)
//      │
//      └──error──▶ failed(error) ──retry──▶ loading
//
// Live updates that arrive while the list loads are kept and applied on top of
// the loaded list, so nothing pushed in between is lost.
import { writable, type Readable } from 'svelte/store';
import { toApiError, type ApiError, type RepositoryView } from './api';

export type RepositoriesState =
  | { readonly status: 'loading' }
  | { readonly status: 'ready'; readonly repositories: readonly RepositoryView[] }
  | { readonly status: 'failed'; readonly error: ApiError };

export type RepositoriesLoader = () => Promise<readonly RepositoryView[]>;

export interface RepositoriesStore extends Readable<RepositoriesState> {
  /** Loads the list; resolves once the state is `ready` or `failed`. */
  load(): Promise<void>;
  /** Loads the list again, e.g. after a failure. */
  retry(): Promise<void>;
  /** One repository changed or was added. */
  upsert(view: RepositoryView): void;
  /** One repository was removed. */
  remove(name: string): void;
}

/** Replaces the repository of the same name where it is, or adds it at the end. */
export function upsertRepository(list: readonly RepositoryView[], view: RepositoryView): RepositoryView[] {
  const index = list.findIndex((item) => item.name === view.name);
  if (index === -1) {
    return [...list, view];
  }
  return list.map((item, i) => (i === index ? view : item));
}

/** The list without the repository of that name; the others keep their order. */
export function removeRepository(list: readonly RepositoryView[], name: string): RepositoryView[] {
  return list.filter((item) => item.name !== name);
}

type Change = { kind: 'upsert'; view: RepositoryView } | { kind: 'remove'; name: string };

function applyChange(list: readonly RepositoryView[], change: Change): RepositoryView[] {
  return change.kind === 'upsert' ? upsertRepository(list, change.view) : removeRepository(list, change.name);
}

/**
 * Creates the store in the `loading` state; call `load()` to start.
 * If a load is started while another is still running, only the newest one's
 * outcome is kept.
 */
export function createRepositoriesStore(loader: RepositoriesLoader): RepositoriesStore {
  const state = writable<RepositoriesState>({ status: 'loading' });
  let current: RepositoriesState = { status: 'loading' };
  let latest = 0;
  /** Changes pushed while loading, applied once the list is there. */
  let pending: Change[] = [];

  function set(next: RepositoriesState): void {
    current = next;
    state.set(next);
  }

  async function load(): Promise<void> {
    latest += 1;
    const attempt = latest;
    set({ status: 'loading' });
    let next: RepositoriesState;
    try {
      const repositories = await loader();
      next = { status: 'ready', repositories: [...repositories] };
    } catch (error: unknown) {
      next = { status: 'failed', error: toApiError(error) };
    }
    if (attempt !== latest) {
      return;
    }
    if (next.status === 'ready') {
      next = { status: 'ready', repositories: pending.reduce(applyChange, next.repositories) };
    }
    pending = [];
    set(next);
  }

  function change(item: Change): void {
    if (current.status === 'ready') {
      set({ status: 'ready', repositories: applyChange(current.repositories, item) });
    } else if (current.status === 'loading') {
      pending.push(item);
    }
    // When failed, "Try again" loads everything afresh.
  }

  return {
    subscribe: state.subscribe,
    load,
    retry: load,
    upsert: (view) => change({ kind: 'upsert', view }),
    remove: (name) => change({ kind: 'remove', name }),
  };
}
