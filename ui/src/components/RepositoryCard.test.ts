import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../lib/api', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../lib/api')>();
  return {
    ...actual,
    listComputers: vi.fn(),
    pauseRepository: vi.fn(),
    resumeRepository: vi.fn(),
    syncNow: vi.fn(),
    openFolder: vi.fn(),
    removeRepository: vi.fn(),
    confirmDeletions: vi.fn(),
    repositoryOptions: vi.fn(),
    updateOptions: vi.fn(),
  };
});

import * as api from '../lib/api';
import type { RepositoryView } from '../lib/api';
import RepositoryCard from './RepositoryCard.svelte';
import { computerView, defaultOptions, repositoryView } from '../test/fixtures';

const NOW = 1_700_000_000_000;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

function renderCard(view: RepositoryView) {
  const onupdated = vi.fn();
  const onremoved = vi.fn();
  const user = userEvent.setup();
  const result = render(RepositoryCard, { view, now: NOW, onupdated, onremoved });
  const card = result.container.querySelector<HTMLElement>(`[data-repository="${view.name}"]`);
  if (!card) throw new Error('no card');
  return { ...result, card, user, onupdated, onremoved };
}

beforeEach(() => {
  vi.mocked(api.listComputers).mockResolvedValue([]);
  for (const command of [api.pauseRepository, api.resumeRepository, api.syncNow, api.openFolder, api.removeRepository]) {
    vi.mocked(command).mockResolvedValue(undefined);
  }
});

describe('the state', () => {
  it.each([
    ['starting', 'Starting…'],
    ['idle', 'Up to date'],
    ['syncing', 'Syncing…'],
    ['waiting_for_space', 'Waiting for space on the shared storage'],
    ['paused', 'Paused'],
    ['error', 'Needs your attention'],
  ] as const)('%s reads "%s", with data-state', (state, text) => {
    const { card } = renderCard(repositoryView({ state }));
    const element = card.querySelector('[data-state]');
    expect(element).toHaveAttribute('data-state', state);
    expect(element).toHaveTextContent(text);
  });

  it('shows the problem of a folder in error', () => {
    renderCard(repositoryView({ state: 'error', problem: { code: 'relay_unreachable', message: 'The storage cannot be reached.' } }));
    expect(screen.getByText('The storage cannot be reached.')).toBeInTheDocument();
  });

  it('explains waiting for space', () => {
    renderCard(repositoryView({ state: 'waiting_for_space' }));
    expect(screen.getByText(/The shared storage is full/)).toBeInTheDocument();
  });

  it('says when it last synced', () => {
    renderCard(repositoryView({ lastSync: NOW - 2 * MINUTE }));
    expect(screen.getByText('Last synced 2 minutes ago')).toBeInTheDocument();
  });
});

describe('progress and usage', () => {
  it('shows live progress while syncing', () => {
    renderCard(
      repositoryView({
        state: 'syncing',
        progress: {
          phase: 'receiving',
          filesDone: 3,
          filesTotal: 10,
          bytesDone: 12_000_000,
          bytesTotal: 40_000_000,
          current: 'Reports/q3.xlsx',
          bytesPerSecond: 2_100_000,
        },
      }),
    );
    const bar = screen.getByRole('progressbar', { name: 'Receiving 3 of 10 files' });
    expect(bar).toHaveAttribute('value', '12000000');
    expect(bar).toHaveAttribute('max', '40000000');
    expect(bar).toHaveAccessibleDescription('12 MB of 40 MB, 2.1 MB/s');
    expect(screen.getByText('Now: Reports/q3.xlsx')).toBeInTheDocument();
  });

  it('shows the space used against the limit as a bar', () => {
    renderCard(repositoryView({ usage: { used: 1_200_000_000, quota: 5_000_000_000 } }));
    const bar = screen.getByRole('progressbar', { name: 'Space on the shared storage' });
    expect(bar).toHaveAccessibleDescription('1.2 GB of 5 GB used');
    expect(screen.getByText('1.2 GB of 5 GB used')).toBeInTheDocument();
  });

  it('shows the space used without a bar when there is no limit', () => {
    renderCard(repositoryView({ usage: { used: 300_000_000, quota: null } }));
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
    expect(screen.getByText('300 MB used on the shared storage (no limit)')).toBeInTheDocument();
  });
});

describe('the other computers', () => {
  it('lists computers that share a name, as cloned computers do', async () => {
    vi.mocked(api.listComputers).mockResolvedValue([
      computerView({ id: 'aaaa', name: 'office-pc', thisComputer: true, lastSeen: NOW }),
      computerView({ id: 'bbbb', name: 'office-pc', lastSeen: NOW - MINUTE }),
    ]);
    renderCard(repositoryView());
    expect(await screen.findByText('Delivered to 1 of 1 computer')).toBeInTheDocument();
    expect(screen.getByText(/Show the computers \(2\)/)).toBeInTheDocument();
  });

  it('counts deliveries and points out absent computers', async () => {
    vi.mocked(api.listComputers).mockResolvedValue([
      computerView({ name: 'desk-a', thisComputer: true, lastSeen: NOW }),
      computerView({ name: 'desk-c', lastSeen: NOW - MINUTE }),
      computerView({ name: 'desk-d', lastSeen: NOW - MINUTE, lacksFiles: 2, lacksBytes: 3_000 }),
      computerView({ name: 'laptop-b', presence: 'absent', lastSeen: NOW - 5 * DAY }),
    ]);
    renderCard(repositoryView());
    expect(await screen.findByText('Delivered to 2 of 3 computers')).toBeInTheDocument();
    expect(api.listComputers).toHaveBeenCalledWith('Accounts');
    expect(screen.getByText('laptop-b has not connected for 5 days')).toBeInTheDocument();
    expect(screen.getByText(/Show the computers \(4\)/)).toBeInTheDocument();
    expect(screen.getByText(/Waiting for 2 files \(3 kB\)/)).toBeInTheDocument();
  });

  it('asks again after each completed sync', async () => {
    const { rerender } = renderCard(repositoryView({ lastSync: NOW - DAY }));
    await screen.findByText('No other computer has joined yet.');
    expect(api.listComputers).toHaveBeenCalledTimes(1);
    await rerender({ view: repositoryView({ lastSync: NOW - DAY, state: 'syncing' }) });
    expect(api.listComputers).toHaveBeenCalledTimes(1);
    await rerender({ view: repositoryView({ lastSync: NOW }) });
    await waitFor(() => expect(api.listComputers).toHaveBeenCalledTimes(2));
  });

  it('waits for the end of a sync before asking again', async () => {
    const { rerender } = renderCard(repositoryView({ lastSync: NOW - DAY }));
    await screen.findByText('No other computer has joined yet.');
    // The sync that just completed is still saving what it learnt.
    await rerender({ view: repositoryView({ lastSync: NOW, state: 'syncing' }) });
    expect(api.listComputers).toHaveBeenCalledTimes(1);
    await rerender({ view: repositoryView({ lastSync: NOW, state: 'idle' }) });
    await waitFor(() => expect(api.listComputers).toHaveBeenCalledTimes(2));
  });

  it('shows the technical cause of a problem under its plain words', () => {
    renderCard(
      repositoryView({
        state: 'error',
        problem: {
          code: 'relay_not_found',
          message: 'The shared storage folder cannot be found.',
          details: 'the relay folder /mnt/share/escale does not exist',
        },
      }),
    );
    expect(screen.getByText('The shared storage folder cannot be found.')).toBeInTheDocument();
    expect(screen.getByText('the relay folder /mnt/share/escale does not exist')).toBeInTheDocument();
  });

  it('says when they cannot be read, and tries again', async () => {
    vi.mocked(api.listComputers)
      .mockRejectedValueOnce({ code: 'relay_unreachable', message: 'The storage cannot be reached.' })
      .mockResolvedValueOnce([]);
    const { user } = renderCard(repositoryView());
    expect(await screen.findByText('The storage cannot be reached.')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByText('No other computer has joined yet.')).toBeInTheDocument();
  });
});

describe('recent activity', () => {
  const activity = Array.from({ length: 7 }, (_, i) => ({
    at: NOW - i * MINUTE,
    kind: 'received' as const,
    text: `${i + 1} files received`,
    path: null,
  }));

  it('shows the newest items with their text as is, and all on demand', async () => {
    const { user, card } = renderCard(repositoryView({ activity }));
    const list = within(card).getByRole('heading', { name: 'Recent activity' }).parentElement;
    if (!list) throw new Error('no list');
    expect(within(list).getAllByRole('listitem')).toHaveLength(5);
    expect(within(list).getByText('1 files received')).toBeInTheDocument();
    await user.click(within(list).getByRole('button', { name: 'Show all 7' }));
    expect(within(list).getAllByRole('listitem')).toHaveLength(7);
  });

  it('opens the folder of a conflict’s kept copy', async () => {
    const { user } = renderCard(
      repositoryView({
        activity: [{ at: NOW, kind: 'conflict', text: 'Budget.xlsx was changed on two computers', path: 'Budget (conflict desk-b).xlsx' }],
      }),
    );
    expect(screen.getByText('Budget.xlsx was changed on two computers')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Open folder of Budget.xlsx was changed on two computers' }));
    expect(api.openFolder).toHaveBeenCalledWith('Accounts', 'Budget (conflict desk-b).xlsx');
  });
});

describe('actions', () => {
  it('pauses, syncs now and opens the folder', async () => {
    const { user } = renderCard(repositoryView());
    await user.click(screen.getByRole('button', { name: 'Pause' }));
    expect(api.pauseRepository).toHaveBeenCalledWith('Accounts');
    await user.click(screen.getByRole('button', { name: 'Sync now' }));
    expect(api.syncNow).toHaveBeenCalledWith('Accounts');
    await user.click(screen.getByRole('button', { name: 'Open folder' }));
    expect(api.openFolder).toHaveBeenCalledWith('Accounts', null);
  });

  it('offers Resume when paused', async () => {
    const { user } = renderCard(repositoryView({ state: 'paused', pausedByUser: true }));
    expect(screen.queryByRole('button', { name: 'Pause' })).not.toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Resume' }));
    expect(api.resumeRepository).toHaveBeenCalledWith('Accounts');
  });

  it('offers no Resume when the pause was not asked for from the app', () => {
    renderCard(
      repositoryView({
        state: 'paused',
        pausedByUser: false,
        problem: { code: 'mass_deletion', message: 'Many files are missing.' },
      }),
    );
    expect(screen.queryByRole('button', { name: 'Resume' })).not.toBeInTheDocument();
    expect(screen.getByText('Many files are missing.')).toBeInTheDocument();
  });

  it('offers to check again or to delete missing files everywhere, only when many went missing', async () => {
    const massDeletion = repositoryView({
      state: 'paused',
      problem: { code: 'mass_deletion', message: 'Many files went missing.' },
    });
    vi.mocked(api.confirmDeletions).mockResolvedValueOnce(12);
    const { user } = renderCard(massDeletion);
    await user.click(screen.getByRole('button', { name: 'Check again' }));
    expect(api.syncNow).toHaveBeenCalledWith('Accounts');
    await user.click(screen.getByRole('button', { name: 'Delete them on the other computers too…' }));
    const dialog = screen.getByRole('alertdialog');
    // The safe choice has the focus: Enter must not delete files everywhere.
    expect(within(dialog).getByRole('button', { name: 'Keep them' })).toHaveFocus();
    await user.click(within(dialog).getByRole('button', { name: 'Yes, delete them everywhere' }));
    expect(api.confirmDeletions).toHaveBeenCalledWith('Accounts');
    await waitFor(() => expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument());
  });

  it('keeps the deletions unsent when the confirmation is refused or fails', async () => {
    const massDeletion = repositoryView({
      state: 'paused',
      problem: { code: 'mass_deletion', message: 'Many files went missing.' },
    });
    vi.mocked(api.confirmDeletions).mockRejectedValueOnce({ code: 'invalid_input', message: 'Nothing to confirm.' });
    const { user } = renderCard(massDeletion);
    await user.click(screen.getByRole('button', { name: 'Delete them on the other computers too…' }));
    await user.click(screen.getByRole('button', { name: 'Keep them' }));
    expect(api.confirmDeletions).not.toHaveBeenCalled();
    await user.click(screen.getByRole('button', { name: 'Delete them on the other computers too…' }));
    await user.click(screen.getByRole('button', { name: 'Yes, delete them everywhere' }));
    expect(await within(screen.getByRole('alertdialog')).findByRole('alert')).toHaveTextContent('Nothing to confirm.');
  });

  it('offers no deletion for other problems', () => {
    renderCard(repositoryView({ state: 'error', problem: { code: 'relay_unreachable', message: 'Unreachable.' } }));
    expect(screen.queryByRole('button', { name: 'Delete them on the other computers too…' })).not.toBeInTheDocument();
  });

  it('shows a failed action', async () => {
    vi.mocked(api.syncNow).mockRejectedValueOnce({ code: 'busy', message: 'A sync is already running.' });
    const { user } = renderCard(repositoryView());
    await user.click(screen.getByRole('button', { name: 'Sync now' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('A sync is already running.');
  });

  it('disables the actions while one runs', async () => {
    let done: () => void = () => {};
    vi.mocked(api.syncNow).mockImplementationOnce(() => new Promise<void>((resolve) => (done = resolve)));
    const { user } = renderCard(repositoryView());
    await user.click(screen.getByRole('button', { name: 'Sync now' }));
    expect(screen.getByRole('button', { name: 'Pause' })).toBeDisabled();
    done();
    await waitFor(() => expect(screen.getByRole('button', { name: 'Pause' })).toBeEnabled());
  });

  it('keeps the folder when removal is not confirmed', async () => {
    const { user, onremoved } = renderCard(repositoryView());
    const remove = screen.getByRole('button', { name: 'Remove' });
    await user.click(remove);
    const dialog = screen.getByRole('alertdialog');
    expect(within(dialog).getByRole('button', { name: 'Keep it' })).toHaveFocus();
    await user.keyboard('{Escape}');
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument();
    expect(remove).toHaveFocus();
    expect(api.removeRepository).not.toHaveBeenCalled();
    expect(onremoved).not.toHaveBeenCalled();
  });

  it('shows why removal failed, in the dialog', async () => {
    vi.mocked(api.removeRepository).mockRejectedValueOnce({ code: 'busy', message: 'The folder is syncing.' });
    const { user, onremoved } = renderCard(repositoryView());
    await user.click(screen.getByRole('button', { name: 'Remove' }));
    await user.click(screen.getByRole('button', { name: 'Yes, remove' }));
    expect(await within(screen.getByRole('alertdialog')).findByRole('alert')).toHaveTextContent('The folder is syncing.');
    expect(onremoved).not.toHaveBeenCalled();
  });

  it('keeps Tab inside the dialog', async () => {
    const { user } = renderCard(repositoryView());
    await user.click(screen.getByRole('button', { name: 'Remove' }));
    const keep = screen.getByRole('button', { name: 'Keep it' });
    const yes = screen.getByRole('button', { name: 'Yes, remove' });
    await user.tab();
    expect(yes).toHaveFocus();
    await user.tab();
    expect(keep).toHaveFocus();
    await user.tab({ shift: true });
    expect(yes).toHaveFocus();
  });
});

describe('settings', () => {
  it('loads the options, saves the changes and passes the updated folder on', async () => {
    vi.mocked(api.repositoryOptions).mockResolvedValue(defaultOptions({ quota: 5_000_000_000, exclude: ['*.tmp'] }));
    const updated = repositoryView({ mode: 'send-only' });
    vi.mocked(api.updateOptions).mockResolvedValue(updated);
    const { user, onupdated } = renderCard(repositoryView());

    await user.click(screen.getByRole('button', { name: 'Settings' }));
    const dialog = screen.getByRole('dialog', { name: 'Settings for “Accounts”' });
    const limit = await within(dialog).findByLabelText('Limit');
    expect(limit).toHaveValue('5');
    expect(within(dialog).getByLabelText('Unit')).toHaveValue('GB');
    expect(within(dialog).getByLabelText('Never sync these')).toHaveValue('*.tmp');

    await user.selectOptions(within(dialog).getByLabelText('Direction'), 'Only send');
    await user.clear(limit);
    await user.click(within(dialog).getByRole('button', { name: 'Save changes' }));
    expect(api.updateOptions).toHaveBeenCalledWith('Accounts', defaultOptions({ mode: 'send-only', exclude: ['*.tmp'] }));
    await waitFor(() => expect(onupdated).toHaveBeenCalledWith(updated));
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
  });

  it('shows what is wrong before saving, and a failed save', async () => {
    vi.mocked(api.repositoryOptions).mockResolvedValue(defaultOptions());
    vi.mocked(api.updateOptions).mockRejectedValueOnce({ code: 'config_invalid', message: 'The pattern "[" is not valid.' });
    const { user } = renderCard(repositoryView());
    await user.click(screen.getByRole('button', { name: 'Settings' }));
    const dialog = screen.getByRole('dialog');
    await user.type(await within(dialog).findByLabelText('Shortest wait (seconds)'), 'soon');
    await user.click(within(dialog).getByRole('button', { name: 'Save changes' }));
    expect(api.updateOptions).not.toHaveBeenCalled();
    expect(within(dialog).getByLabelText('Shortest wait (seconds)')).toHaveAccessibleDescription(/number of seconds/);
    await user.clear(within(dialog).getByLabelText('Shortest wait (seconds)'));
    expect(within(dialog).getByLabelText('Shortest wait (seconds)')).not.toHaveAttribute('aria-invalid');
    await user.click(within(dialog).getByRole('button', { name: 'Save changes' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('The pattern "[" is not valid.');
    await user.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
  });

  it('says when the options cannot be loaded', async () => {
    vi.mocked(api.repositoryOptions).mockRejectedValueOnce({ code: 'config_invalid', message: 'The settings file is damaged.' });
    const { user } = renderCard(repositoryView());
    await user.click(screen.getByRole('button', { name: 'Settings' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('The settings file is damaged.');
  });
});
