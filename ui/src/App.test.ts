import { render, screen } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('./lib/api', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./lib/api')>();
  return { ...actual, listRepositories: vi.fn() };
});

import App from './App.svelte';
import { listRepositories, type RepositoryView } from './lib/api';
import { repositoryView } from './test/fixtures';

const loader = vi.mocked(listRepositories);

const HEADING = 'Keep your folders in sync';
const ADD = 'Add a synced folder';
const NOTE = 'Setting up a folder from this window is coming in the next version.';

beforeEach(() => {
  loader.mockReset();
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
      repositoryView({ name: 'Photos', folder: 'C:\\Users\\ana\\Pictures', relay: '\\\\nas\\shared\\escale' }),
    ]);
    render(App);

    const list = await screen.findByRole('list');
    const cards = screen.getAllByRole('listitem');
    expect(list).toContainElement(cards[0] ?? null);
    expect(cards).toHaveLength(2);
    expect(cards[0]).toHaveTextContent('Accounts');
    expect(cards[0]).toHaveTextContent('/home/ana/Accounts');
    expect(cards[0]).toHaveTextContent('ftp://files.office.example/escale');
    expect(cards[1]).toHaveTextContent('Photos');
    expect(cards[1]).toHaveTextContent('C:\\Users\\ana\\Pictures');
    expect(cards[1]).toHaveTextContent('\\\\nas\\shared\\escale');
    expect(screen.getByRole('heading', { level: 3, name: 'Accounts' })).toBeInTheDocument();
    expect(screen.getByRole('heading', { level: 2 })).toHaveTextContent('Your synced folders (2 folders)');
    expect(screen.getByRole('button', { name: ADD })).toBeInTheDocument();
  });

  it('shows a polite note when "Add a synced folder" is clicked', async () => {
    loader.mockResolvedValue([]);
    const user = userEvent.setup();
    const { container } = render(App);

    const button = await screen.findByRole('button', { name: ADD });
    expect(screen.queryByText(NOTE)).not.toBeInTheDocument();

    await user.click(button);

    const note = await screen.findByText(NOTE);
    const region = container.querySelector('[aria-live="polite"]:not([role])');
    expect(region).not.toBeNull();
    expect(region).toContainElement(note);
  });
});
