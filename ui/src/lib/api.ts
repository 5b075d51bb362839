// Typed wrapper around the Tauri commands the UI calls.
//
// IPC contract (see src-tauri/src/commands.rs):
//   list_repositories() -> RepositorySummary[]
//   on failure the promise rejects with { code: string; message: string }
//   where `code` is a stable machine string ("config_invalid", ...) and
//   `message` is a plain-language sentence meant for the person using the app.
import { invoke } from '@tauri-apps/api/core';

/** One configured synced folder, as the desktop app lists it. */
export interface RepositorySummary {
  /** The name the person gave this synced folder. */
  name: string;
  /** Path of the folder on this computer. */
  folder: string;
  /** Address of the shared storage the computers pass files through. */
  relay: string;
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

const UNEXPECTED_MESSAGE =
  'Something unexpected went wrong while talking to Escale. Closing and reopening the app may help.';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

/** True for a well-formed `{ code, message }` error from the desktop app. */
export function isApiError(value: unknown): value is ApiError {
  return isRecord(value) && isNonEmptyString(value['code']) && isNonEmptyString(value['message']);
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

/** True for a value with the RepositorySummary shape. */
export function isRepositorySummary(value: unknown): value is RepositorySummary {
  return (
    isRecord(value) &&
    typeof value['name'] === 'string' &&
    typeof value['folder'] === 'string' &&
    typeof value['relay'] === 'string'
  );
}

/**
 * The synced folders configured on this computer, in the order they were added.
 * Rejects with an ApiError, never with anything else.
 */
export async function listRepositories(): Promise<RepositorySummary[]> {
  let result: unknown;
  try {
    result = await invoke<unknown>('list_repositories');
  } catch (error: unknown) {
    throw toApiError(error);
  }
  if (!Array.isArray(result) || !result.every(isRepositorySummary)) {
    throw toApiError(result);
  }
  return result.map(({ name, folder, relay }) => ({ name, folder, relay }));
}
