// Well-formed values of the contract's types, for tests.
import type { ComputerView, RelayCheck, RepositoryOptions, RepositoryView } from '../lib/api';

export function repositoryView(overrides: Partial<RepositoryView> = {}): RepositoryView {
  return {
    name: 'Accounts',
    folder: '/home/ana/Accounts',
    relay: 'ftp://ana@files.office.example/escale',
    mode: 'send-receive',
    state: 'idle',
    pausedByUser: false,
    progress: null,
    problem: null,
    lastSync: null,
    usage: null,
    activity: [],
    ...overrides,
  };
}

export function computerView(overrides: Partial<ComputerView> = {}): ComputerView {
  const name = overrides.name ?? 'desk-a';
  return {
    id: `id-${name}`,
    name,
    thisComputer: false,
    lastSeen: null,
    presence: 'active',
    lacksFiles: 0,
    lacksBytes: 0,
    ...overrides,
  };
}

export function defaultOptions(overrides: Partial<RepositoryOptions> = {}): RepositoryOptions {
  return {
    mode: 'send-receive',
    quota: null,
    include: [],
    exclude: [],
    rules: [],
    pollMinSeconds: null,
    pollMaxSeconds: null,
    ...overrides,
  };
}

export function passedCheck(address: string, holdsRepository: boolean | null = false): RelayCheck {
  return {
    address,
    holdsRepository,
    steps: [
      { kind: 'address', title: 'Address', outcome: 'passed', detail: 'FTP storage' },
      { kind: 'login', title: 'Login and folder', outcome: 'passed', detail: 'Logged in as ana' },
    ],
  };
}

export function failedCheck(address: string): RelayCheck {
  return {
    address,
    holdsRepository: null,
    steps: [
      { kind: 'address', title: 'Address', outcome: 'passed', detail: 'FTP storage' },
      {
        kind: 'login',
        title: 'Login and folder',
        outcome: 'failed',
        code: 'login_refused',
        problem: 'The server refused the user name or password.',
        fix: 'Check the user name and the password.',
        details: 'The server refused the login for ana.',
      },
      { kind: 'save', title: 'Saving a file', outcome: 'not_run' },
    ],
  };
}
