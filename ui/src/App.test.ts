import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('./lib/api', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./lib/api')>();
  return {
    ...actual,
    listRepositories: vi.fn(),
    listComputers: vi.fn(),
    onRepository: vi.fn(),
    onRepositoryRemoved: vi.fn(),
    appSettings: vi.fn(),
    setAppSettings: vi.fn(),
    openLogFolder: vi.fn(),
    checkRelay: vi.fn(),
    createRepository: vi.fn(),
    removeRepository: vi.fn(),
  };
});

import App from './App.svelte';
import * as api from './lib/api';
import type { RepositoryView } from './lib/api';
import { passedCheck, repositoryView } from './test/fixtures';

const loader = vi.mocked(api.listRepositories);

const HEADING = 'Keep your folders in sync';
const ADD = 'Add a synced folder';

let pushRepository: (view: RepositoryView) => void = () => {};
let pushRemoved: (name: string) => void = () => {};
const unlisten = vi.fn();

beforeEach(() => {
  loader.mockReset();
  vi.mocked(api.listComputers).mockResolvedValue([]);
  vi.mocked(api.onRepository).mockImplementation(async (callback) => {
    pushRepository = callback;
    return unlisten;
  });
  vi.mocked(api.onRepositoryRemoved).mockImplementation(async (callback) => {
    pushRemoved = callback;
    return unlisten;
  });
  vi.mocked(api.appSettings).mockResolvedValue({ notifications: true, startAtLogin: false });
});

describe('App', () => {
  it('shows a busy loading state while the folders load', () => {
    loader.mockReturnValue(new Promise<RepositoryView[]>(() => {}));
    render(App);

    expect(screen.getByText('Escale')).toBeInTheDocument();
    const status = screen.getByRole('status');
    expect(status).toHaveAttribute('aria-busy', 'true');
    expect(status).toHaveTextContent('Loading your folders…');
    expect(screen.queryByRole('button', { name: ADD })).not.toBeInTheDocument();
    expect(loader).toHaveBeenCalledTimes(1);
  });

  it('shows the first screen when there are no folders yet', async () => {
    loader.mockResolvedValue([]);
    render(App);

    expect(await screen.findByRole('button', { name: ADD })).toBeEnabled();
    expect(screen.getByRole('heading', { level: 1 })).toHaveTextContent(HEADING);
    expect(screen.getByRole('heading', { level: 1, name: HEADING })).toBeInTheDocument();
    expect(screen.getByText(/keeps a folder identical on several computers/)).toBeInTheDocument();
    expect(screen.getByText(/encrypted before they leave your computer/)).toBeInTheDocument();
    expect(screen.queryByRole('status')).not.toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(screen.queryByRole('list')).not.toBeInTheDocument();
  });

  it('shows the error in an alert and loads again on "Try again"', async () => {
    loader
      .mockRejectedValueOnce({ code: 'config_invalid', message: 'The settings file is damaged.' })
      .mockResolvedValueOnce([]);
    const user = userEvent.setup();
    render(App);

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('The settings file is damaged.');
    expect(alert).toHaveTextContent('config_invalid');
    expect(screen.queryByRole('button', { name: ADD })).not.toBeInTheDocument();

    await user.click(screen.getByRole('button', { name: 'Try again' }));

    expect(loader).toHaveBeenCalledTimes(2);
    expect(await screen.findByRole('button', { name: ADD })).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('shows a plain message for an unexpected failure', async () => {
    loader.mockRejectedValueOnce(new TypeError("Cannot read properties of undefined (reading 'invoke')"));
    render(App);

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent(/Something unexpected went wrong/);
    expect(alert).not.toHaveTextContent('Cannot read properties');
  });

  it('lists the folders as cards', async () => {
    loader.mockResolvedValue([
      repositoryView({ name: 'Accounts', folder: '/home/ana/Accounts', relay: 'ftp://files.office.example/escale' }),
      repositoryView({ name: 'Photos', folder: 'C:\\Users\\ana\\Pictures', relay: 'file:////nas/shared/escale' }),
    ]);
    const { container } = render(App);

    await screen.findByRole('heading', { level: 3, name: 'Accounts' });
    const cards = container.querySelectorAll('[data-repository]');
    expect(cards).toHaveLength(2);
    expect(cards[0]).toHaveAttribute('data-repository', 'Accounts');
    expect(cards[0]).toHaveTextContent('/home/ana/Accounts');
    expect(cards[0]).toHaveTextContent('ftp://files.office.example/escale');
    expect(cards[1]).toHaveAttribute('data-repository', 'Photos');
    expect(cards[1]).toHaveTextContent('C:\\Users\\ana\\Pictures');
    expect(screen.getByRole('heading', { level: 2, name: /Your synced folders/ })).toHaveTextContent(
      'Your synced folders (2 folders)',
    );
    expect(screen.getByRole('button', { name: ADD })).toBeInTheDocument();
  });

  it('opens the set-up wizard from the first screen, focused on its first step, and cancels it', async () => {
    loader.mockResolvedValue([]);
    const user = userEvent.setup();
    render(App);

    await user.click(await screen.findByRole('button', { name: ADD }));

    expect(screen.getByRole('heading', { level: 1, name: ADD })).toBeInTheDocument();
    const step = screen.getByRole('heading', { level: 2, name: 'What would you like to do?' });
    await waitFor(() => expect(step).toHaveFocus());
    expect(screen.getByRole('radio', { name: 'Create a new shared folder' })).toBeInTheDocument();
    expect(screen.getByRole('radio', { name: 'Join an existing shared folder' })).toBeInTheDocument();

    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(await screen.findByRole('heading', { level: 1, name: HEADING })).toHaveFocus();
  });

  it('opens the wizard from the list too, and shows the new folder once set up', async () => {
    loader.mockResolvedValue([repositoryView({ name: 'Accounts' })]);
    vi.mocked(api.checkRelay).mockImplementation(async (relay) => passedCheck(relay, null));
    vi.mocked(api.createRepository).mockImplementation(async (setup) =>
      repositoryView({ name: setup.name, folder: setup.folder, relay: setup.relay, state: 'starting' }),
    );
    const user = userEvent.setup();
    const { container } = render(App);

    await user.click(await screen.findByRole('button', { name: ADD }));
    await user.click(screen.getByRole('radio', { name: 'Create a new shared folder' }));
    await user.click(screen.getByRole('button', { name: 'Next' }));
    await user.click(screen.getByRole('radio', { name: 'Network or local folder' }));
    await user.type(screen.getByLabelText('Folder on the network or this computer'), '/mnt/share/escale');
    await user.click(screen.getByRole('button', { name: 'Test connection' }));
    await screen.findByText('The connection works.');
    await user.click(screen.getByRole('button', { name: 'Next' }));
    await user.type(screen.getByLabelText('Folder on this computer'), '/home/ana/Reports');
    await user.click(screen.getByRole('button', { name: 'Next' }));
    await user.type(screen.getByLabelText('Passphrase'), 'correct horse battery staple');
    await user.type(screen.getByLabelText('Type the passphrase again'), 'correct horse battery staple');
    await user.click(screen.getByRole('checkbox', { name: 'I understand that a lost passphrase cannot be recovered' }));
    await user.click(screen.getByRole('button', { name: 'Next' }));
    await user.click(screen.getByRole('button', { name: 'Start syncing' }));

    expect(await screen.findByRole('heading', { level: 1, name: HEADING })).toHaveFocus();
    expect(screen.getByText('“Reports” is set up. Escale keeps it in sync from now on.')).toBeInTheDocument();
    const cards = container.querySelectorAll('[data-repository]');
    expect([...cards].map((card) => card.getAttribute('data-repository'))).toEqual(['Accounts', 'Reports']);
    expect(container.querySelector('[data-repository="Reports"] [data-state]')).toHaveAttribute('data-state', 'starting');
  });

  it('follows the live updates', async () => {
    loader.mockResolvedValue([repositoryView({ name: 'Accounts' }), repositoryView({ name: 'Photos' })]);
    const { container } = render(App);
    await screen.findByRole('heading', { level: 3, name: 'Accounts' });

    pushRepository(repositoryView({ name: 'Accounts', state: 'syncing' }));
    await waitFor(() =>
      expect(container.querySelector('[data-repository="Accounts"] [data-state]')).toHaveTextContent('Syncing…'),
    );
    pushRepository(repositoryView({ name: 'Scans' }));
    pushRemoved('Photos');
    await waitFor(() =>
      expect([...container.querySelectorAll('[data-repository]')].map((c) => c.getAttribute('data-repository'))).toEqual([
        'Accounts',
        'Scans',
      ]),
    );
  });

  it('still works when live updates cannot be had, and says so', async () => {
    vi.mocked(api.onRepository).mockRejectedValue({ code: 'unexpected', message: 'No IPC.' });
    loader.mockResolvedValue([]);
    render(App);
    expect(await screen.findByText(/Live updates are not available/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: ADD })).toBeInTheDocument();
  });

  it('stops listening when closed', async () => {
    loader.mockResolvedValue([]);
    const { unmount } = render(App);
    await screen.findByRole('button', { name: ADD });
    unmount();
    expect(unlisten).toHaveBeenCalledTimes(2);
  });

  it('removes a folder after confirmation, saying the files stay', async () => {
    loader.mockResolvedValue([repositoryView({ name: 'Accounts' }), repositoryView({ name: 'Photos' })]);
    vi.mocked(api.removeRepository).mockResolvedValue(undefined);
    const user = userEvent.setup();
    const { container } = render(App);
    await screen.findByRole('heading', { level: 3, name: 'Photos' });

    const card = container.querySelector<HTMLElement>('[data-repository="Photos"]');
    if (!card) throw new Error('no card');
    await user.click(within(card).getByRole('button', { name: 'Remove' }));
    const dialog = screen.getByRole('alertdialog', { name: 'Remove “Photos” from Escale?' });
    expect(dialog).toHaveTextContent('The folder and its files stay on this computer.');
    await user.click(within(dialog).getByRole('button', { name: 'Yes, remove' }));

    expect(api.removeRepository).toHaveBeenCalledWith('Photos');
    await waitFor(() => expect(container.querySelector('[data-repository="Photos"]')).toBeNull());
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument();
    expect(screen.getByText(/“Photos” is no longer synced/)).toBeInTheDocument();
  });

  describe('the app’s settings', () => {
    it('shows and changes them, and opens the log folder', async () => {
      loader.mockResolvedValue([]);
      vi.mocked(api.setAppSettings).mockImplementation(async (settings) => settings);
      vi.mocked(api.openLogFolder).mockResolvedValue(undefined);
      const user = userEvent.setup();
      render(App);

      const notifications = await screen.findByRole('checkbox', { name: 'Show notifications' });
      const login = screen.getByRole('checkbox', { name: 'Start Escale when I log in' });
      expect(notifications).toBeChecked();
      expect(login).not.toBeChecked();
      await user.click(login);
      expect(api.setAppSettings).toHaveBeenCalledWith({ notifications: true, startAtLogin: true });
      await waitFor(() => expect(login).toBeChecked());

      await user.click(screen.getByRole('button', { name: 'Open log folder' }));
      expect(api.openLogFolder).toHaveBeenCalled();
    });

    it('puts a setting back when saving it fails', async () => {
      loader.mockResolvedValue([]);
      vi.mocked(api.setAppSettings).mockRejectedValue({ code: 'autostart', message: 'The login item could not be made.' });
      const user = userEvent.setup();
      render(App);

      const login = await screen.findByRole('checkbox', { name: 'Start Escale when I log in' });
      await user.click(login);
      expect(await screen.findByRole('alert')).toHaveTextContent('The login item could not be made.');
      expect(login).not.toBeChecked();
    });
  });
});
