import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent, { type UserEvent } from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../lib/api', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../lib/api')>();
  return {
    ...actual,
    checkRelay: vi.fn(),
    verifyPassphrase: vi.fn(),
    createRepository: vi.fn(),
    joinRepository: vi.fn(),
    pickFolder: vi.fn(),
    saveRecoveryCopy: vi.fn(),
  };
});

import * as api from '../lib/api';
import type { RelayCheck } from '../lib/api';
import Wizard from './Wizard.svelte';
import { failedCheck, passedCheck, repositoryView } from '../test/fixtures';

const PASSPHRASE = 'correct horse battery staple';

function setup(existingNames: string[] = []) {
  const ondone = vi.fn();
  const oncancel = vi.fn();
  const user = userEvent.setup();
  const result = render(Wizard, { existingNames, ondone, oncancel });
  return { ...result, user, ondone, oncancel };
}

async function next(user: UserEvent): Promise<void> {
  await user.click(screen.getByRole('button', { name: 'Next' }));
}

async function toStorage(user: UserEvent, intent: 'create' | 'join'): Promise<void> {
  await user.click(
    screen.getByRole('radio', { name: intent === 'create' ? 'Create a new shared folder' : 'Join an existing shared folder' }),
  );
  await next(user);
}

async function localStorageTested(user: UserEvent): Promise<void> {
  await user.click(screen.getByRole('radio', { name: 'Network or local folder' }));
  await user.type(screen.getByLabelText('Folder on the network or this computer'), 'Z:\\Escale');
  await user.click(screen.getByRole('button', { name: 'Test connection' }));
  await screen.findByText('The connection works.');
}

async function toPassphrase(user: UserEvent, intent: 'create' | 'join'): Promise<void> {
  await toStorage(user, intent);
  await localStorageTested(user);
  await next(user);
  await user.type(screen.getByLabelText('Folder on this computer'), 'C:\\Users\\ana\\Reports');
  await next(user);
  await screen.findByRole('heading', { level: 2, name: intent === 'create' ? 'Choose a passphrase' : 'Type the passphrase' });
}

beforeEach(() => {
  vi.mocked(api.checkRelay).mockImplementation(async (relay) => passedCheck(relay, null));
  vi.mocked(api.verifyPassphrase).mockResolvedValue(undefined);
  vi.mocked(api.createRepository).mockImplementation(async (s) => repositoryView({ name: s.name }));
  vi.mocked(api.joinRepository).mockImplementation(async (s) => repositoryView({ name: s.name }));
  vi.mocked(api.pickFolder).mockResolvedValue('C:\\Users\\ana\\Documents\\Quotes');
  vi.mocked(api.saveRecoveryCopy).mockResolvedValue(true);
});

describe('the first step', () => {
  it('shows the two choices as radio cards and says to choose one', async () => {
    const { user } = setup();
    expect(screen.getByText('Step 1 of 5')).toBeInTheDocument();
    const create = screen.getByRole('radio', { name: 'Create a new shared folder' });
    expect(create).toHaveAccessibleDescription(/Other computers join it afterwards/);
    expect(screen.queryByRole('button', { name: 'Back' })).not.toBeInTheDocument();
    await next(user);
    expect(screen.getByText('Choose one of the two.')).toBeInTheDocument();
    expect(create).toHaveFocus();
    await user.click(create);
    expect(screen.queryByText('Choose one of the two.')).not.toBeInTheDocument();
  });

  it('moves on with Enter, focusing the next step’s heading', async () => {
    const { user } = setup();
    await user.click(screen.getByRole('radio', { name: 'Join an existing shared folder' }));
    await user.keyboard('{Enter}');
    const heading = await screen.findByRole('heading', { level: 2, name: 'Where will the files pass through?' });
    await waitFor(() => expect(heading).toHaveFocus());
    expect(screen.getByText('Step 2 of 5')).toBeInTheDocument();
  });
});

describe('the storage step', () => {
  it('shows only the fields of the chosen kind, with examples and hints', async () => {
    const { user } = setup();
    await toStorage(user, 'create');
    expect(screen.queryByRole('button', { name: 'Test connection' })).not.toBeInTheDocument();
    for (const title of ['Network or local folder', 'FTP or FTPS', 'WebDAV', 'Amazon S3 or compatible', 'SFTP', 'Other cloud (through rclone)']) {
      expect(screen.getByRole('radio', { name: title })).toBeInTheDocument();
    }

    await user.click(screen.getByRole('radio', { name: 'FTP or FTPS' }));
    for (const label of ['Server', 'Port', 'User name', 'Password', 'Folder on the server']) {
      expect(screen.getByLabelText(new RegExp(`^${label}`))).toBeInTheDocument();
    }
    expect(screen.getByRole('checkbox', { name: 'Use a secure connection (FTPS)' })).toBeChecked();
    expect(screen.getByLabelText(/^Server/)).toHaveAttribute('placeholder', 'files.example.com');
    expect(screen.getByLabelText(/^Password/)).toHaveAttribute('type', 'password');
    expect(screen.queryByLabelText('Folder on the network or this computer')).not.toBeInTheDocument();

    await user.click(screen.getByRole('radio', { name: 'WebDAV' }));
    expect(screen.getByRole('radio', { name: 'Nextcloud' })).toBeChecked();
    expect(screen.getByLabelText('Nextcloud address')).toHaveAccessibleDescription(/remote\.php\/dav\/files\/USER/);
    await user.click(screen.getByRole('radio', { name: 'Yandex Disk' }));
    expect(screen.getByLabelText('Server address')).toHaveValue('webdav.yandex.ru');

    await user.click(screen.getByRole('radio', { name: 'Amazon S3 or compatible' }));
    expect(screen.getByLabelText('Access key ID')).toBeInTheDocument();
    expect(screen.getByLabelText('Secret access key')).toHaveAttribute('type', 'password');

    await user.click(screen.getByRole('radio', { name: 'Other cloud (through rclone)' }));
    expect(screen.getByLabelText('rclone remote')).toBeInTheDocument();
  });

  it('says what is wrong with the fields instead of testing them', async () => {
    const { user } = setup();
    await toStorage(user, 'create');
    await user.click(screen.getByRole('radio', { name: 'FTP or FTPS' }));
    await user.click(screen.getByRole('button', { name: 'Test connection' }));
    expect(api.checkRelay).not.toHaveBeenCalled();
    const server = screen.getByLabelText(/^Server/);
    expect(server).toHaveAttribute('aria-invalid', 'true');
    expect(server).toHaveAccessibleDescription(/Write the name or address of the server\./);
    await waitFor(() => expect(server).toHaveFocus());
  });

  it('shows each step of the test, busy while it runs, and the address without the password', async () => {
    let finish: (check: RelayCheck) => void = () => {};
    vi.mocked(api.checkRelay).mockImplementation(() => new Promise((resolve) => (finish = resolve)));
    const { user } = setup();
    await toStorage(user, 'create');
    await user.click(screen.getByRole('radio', { name: 'FTP or FTPS' }));
    await user.type(screen.getByLabelText(/^Server/), 'files.example.com');
    await user.type(screen.getByLabelText(/^User name/), 'ana');
    await user.type(screen.getByLabelText(/^Password/), 'ftp-secret');
    await user.type(screen.getByLabelText(/^Folder on the server/), '/escale');
    expect(screen.getByText('ftps://ana@files.example.com/escale')).toBeInTheDocument();

    const test = screen.getByRole('button', { name: 'Test connection' });
    await user.click(test);
    expect(api.checkRelay).toHaveBeenCalledWith('ftps://ana@files.example.com/escale', 'ftp-secret');
    expect(test).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Next' })).toBeDisabled();
    expect(screen.getByText('Testing the connection…')).toBeInTheDocument();

    finish(failedCheck('ftps://ana@files.example.com/escale'));
    expect(await screen.findByText(/The connection does not work yet/)).toBeInTheDocument();
    const steps = screen.getAllByRole('listitem');
    expect(steps[0]).toHaveTextContent('✓');
    expect(steps[0]).toHaveTextContent('Passed: Address: FTP storage');
    expect(steps[1]).toHaveTextContent('✗');
    expect(steps[1]).toHaveTextContent('The server refused the user name or password.');
    expect(steps[1]).toHaveTextContent('What to do: Check the user name and the password.');
    expect(steps[2]).toHaveTextContent('Saving a file (not tried)');
    expect(test).toBeEnabled();

    await next(user);
    expect(api.checkRelay).toHaveBeenCalledTimes(2);
    finish(passedCheck('ftps://ana@files.example.com/escale'));
    expect(await screen.findByText('The connection works.')).toBeInTheDocument();
    await next(user);
    expect(await screen.findByRole('heading', { name: 'Which folder on this computer?' })).toBeInTheDocument();
  });

  it('offers to join a storage that already holds a shared folder', async () => {
    vi.mocked(api.checkRelay).mockImplementation(async (relay) => passedCheck(relay, true));
    const { user } = setup();
    await toStorage(user, 'create');
    await localStorageTested(user);
    expect(screen.getByRole('alert')).toHaveTextContent('This storage already holds a shared folder.');
    await next(user);
    expect(screen.getByRole('heading', { level: 2 })).toHaveTextContent('Where will the files pass through?');
    await user.click(screen.getByRole('button', { name: 'Join it instead' }));
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    await next(user);
    await user.type(screen.getByLabelText('Folder on this computer'), '/home/ana/Shared');
    await next(user);
    expect(await screen.findByRole('heading', { level: 2, name: 'Type the passphrase' })).toBeInTheDocument();
  });

  it('offers to create on a storage with nothing to join', async () => {
    vi.mocked(api.checkRelay).mockImplementation(async (relay) => passedCheck(relay, false));
    const { user } = setup();
    await toStorage(user, 'join');
    await localStorageTested(user);
    expect(screen.getByRole('alert')).toHaveTextContent('does not hold a shared folder yet');
    await user.click(screen.getByRole('button', { name: 'Create a new one instead' }));
    await next(user);
    expect(await screen.findByRole('heading', { name: 'Which folder on this computer?' })).toBeInTheDocument();
  });

  it('picks the shared storage folder with Choose…', async () => {
    vi.mocked(api.pickFolder).mockResolvedValueOnce('\\\\nas\\shared\\escale');
    const { user } = setup();
    await toStorage(user, 'create');
    await user.click(screen.getByRole('radio', { name: 'Network or local folder' }));
    await user.click(screen.getByRole('button', { name: 'Choose…' }));
    expect(screen.getByLabelText('Folder on the network or this computer')).toHaveValue('\\\\nas\\shared\\escale');
    expect(screen.getByText('file:////nas/shared/escale')).toBeInTheDocument();
  });
});

describe('the folder step', () => {
  it('takes a typed or chosen folder and names it after the folder', async () => {
    const { user } = setup(['Reports']);
    await toStorage(user, 'create');
    await localStorageTested(user);
    await next(user);
    const folder = screen.getByLabelText('Folder on this computer');
    const name = screen.getByLabelText('Name');
    await user.type(folder, 'C:\\Users\\ana\\Reports');
    expect(name).toHaveValue('Reports');
    await next(user);
    expect(name).toHaveAccessibleDescription(/Another synced folder already has this name/);
    await waitFor(() => expect(name).toHaveFocus());

    await user.click(screen.getByRole('button', { name: 'Choose…' }));
    expect(api.pickFolder).toHaveBeenCalledWith('Choose the folder to keep in sync');
    expect(folder).toHaveValue('C:\\Users\\ana\\Documents\\Quotes');
    expect(name).toHaveValue('Quotes');
    await user.click(name);
    await user.keyboard('{Enter}');
    expect(await screen.findByRole('heading', { name: 'Choose a passphrase' })).toBeInTheDocument();
  });

  it('refuses the shared storage folder itself', async () => {
    const { user } = setup();
    await toStorage(user, 'create');
    await localStorageTested(user);
    await next(user);
    await user.type(screen.getByLabelText('Folder on this computer'), 'Z:\\Escale\\Mine');
    await next(user);
    expect(screen.getByText(/must be separate/)).toBeInTheDocument();
  });
});

describe('the passphrase step', () => {
  it('asks twice, says how strong it is, warns, and needs the acknowledgement', async () => {
    const { user } = setup();
    await toPassphrase(user, 'create');
    const passphrase = screen.getByLabelText('Passphrase');
    expect(passphrase).toHaveAttribute('type', 'password');
    expect(screen.getByText(/A lost passphrase cannot be recovered\./)).toBeInTheDocument();

    await user.type(passphrase, 'password1');
    expect(screen.getByText(/^Weak/)).toBeInTheDocument();
    await user.clear(passphrase);
    await user.type(passphrase, 'Summer2024');
    expect(screen.getByText(/^Fair/)).toBeInTheDocument();
    await user.clear(passphrase);
    await user.type(passphrase, PASSPHRASE);
    expect(screen.getByText('Strong.')).toBeInTheDocument();

    await user.type(screen.getByLabelText('Type the passphrase again'), 'something else');
    await next(user);
    expect(screen.getByLabelText('Type the passphrase again')).toHaveAccessibleDescription(
      'The two passphrases are not the same.',
    );
    expect(screen.getByText('Tick this box to go on.')).toBeInTheDocument();

    await user.clear(screen.getByLabelText('Type the passphrase again'));
    await user.type(screen.getByLabelText('Type the passphrase again'), PASSPHRASE);
    await user.click(screen.getByRole('checkbox', { name: 'I understand that a lost passphrase cannot be recovered' }));
    await user.click(screen.getByRole('checkbox', { name: 'Show the passphrase' }));
    expect(passphrase).toHaveAttribute('type', 'text');

    await user.click(screen.getByRole('button', { name: 'Save a recovery copy…' }));
    expect(api.saveRecoveryCopy).toHaveBeenCalledWith('Reports', 'file:///Z:/Escale', PASSPHRASE);
    expect(await screen.findByText('Recovery copy saved.')).toBeInTheDocument();

    await next(user);
    expect(await screen.findByRole('heading', { name: 'Ready to start' })).toBeInTheDocument();
  });

  it('checks a joining passphrase and stays on the step when it is wrong', async () => {
    vi.mocked(api.verifyPassphrase)
      .mockRejectedValueOnce({ code: 'wrong_passphrase', message: 'Wrong.' })
      .mockResolvedValueOnce(undefined);
    const { user } = setup();
    await toPassphrase(user, 'join');
    expect(screen.queryByLabelText('Type the passphrase again')).not.toBeInTheDocument();
    const passphrase = screen.getByLabelText('Passphrase');
    await user.type(passphrase, 'not the one{Enter}');
    expect(api.verifyPassphrase).toHaveBeenCalledWith('file:///Z:/Escale', null, 'not the one');
    expect(
      await screen.findByText('This passphrase does not open the shared folder. Check it with the person who set it up.'),
    ).toBeInTheDocument();
    expect(passphrase).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByRole('heading', { level: 2 })).toHaveTextContent('Type the passphrase');

    await user.clear(passphrase);
    await user.type(passphrase, PASSPHRASE);
    expect(screen.queryByText(/does not open the shared folder/)).not.toBeInTheDocument();
    await next(user);
    expect(await screen.findByRole('heading', { name: 'Ready to start' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Join and start syncing' })).toBeInTheDocument();
  });

  it('shows another failure of the check as an alert', async () => {
    vi.mocked(api.verifyPassphrase).mockRejectedValueOnce({ code: 'relay_unreachable', message: 'The storage cannot be reached.' });
    const { user } = setup();
    await toPassphrase(user, 'join');
    await user.type(screen.getByLabelText('Passphrase'), PASSPHRASE);
    await next(user);
    expect(await screen.findByRole('alert')).toHaveTextContent('The storage cannot be reached.');
  });
});

describe('the finish step', () => {
  async function toFinish(user: UserEvent): Promise<void> {
    await toPassphrase(user, 'create');
    await user.type(screen.getByLabelText('Passphrase'), PASSPHRASE);
    await user.type(screen.getByLabelText('Type the passphrase again'), PASSPHRASE);
    await user.click(screen.getByRole('checkbox', { name: 'I understand that a lost passphrase cannot be recovered' }));
    await next(user);
    await screen.findByRole('heading', { name: 'Ready to start' });
  }

  it('sums up, keeps the advanced options folded, and starts syncing', async () => {
    const { user, ondone } = setup();
    await toFinish(user);
    const summary = screen.getByRole('heading', { name: 'Ready to start' }).parentElement;
    expect(summary).toHaveTextContent('file:///Z:/Escale');
    expect(summary).toHaveTextContent('C:\\Users\\ana\\Reports');
    expect(summary).toHaveTextContent('Send and receive');

    const advanced = screen.getByText('Advanced options').closest('details');
    expect(advanced).not.toHaveAttribute('open');
    await user.click(screen.getByText('Advanced options'));
    await user.selectOptions(screen.getByLabelText('Direction'), 'Only receive');
    await user.type(screen.getByLabelText('Limit'), '5');
    await user.selectOptions(screen.getByLabelText('Unit'), 'GB');
    await user.type(screen.getByLabelText('Never sync these'), '*.tmp{Enter}Drafts/');
    await user.click(screen.getByRole('button', { name: 'Add a rule' }));
    expect(screen.getByRole('textbox', { name: 'Files or folders, rule 1' })).toHaveFocus();
    await user.keyboard('Sales/');
    await user.selectOptions(screen.getByRole('combobox', { name: 'What happens, rule 1' }), 'Only send');
    await user.click(screen.getByRole('button', { name: 'Add a rule' }));
    await user.click(screen.getByRole('button', { name: 'Delete rule 2' }));
    expect(screen.getByRole('textbox', { name: 'Files or folders, rule 1' })).toHaveFocus();
    await user.type(screen.getByLabelText('Shortest wait (seconds)'), '5');

    await user.click(screen.getByRole('button', { name: 'Start syncing' }));
    expect(api.createRepository).toHaveBeenCalledWith({
      name: 'Reports',
      folder: 'C:\\Users\\ana\\Reports',
      relay: 'file:///Z:/Escale',
      relayPassword: null,
      passphrase: PASSPHRASE,
      options: {
        mode: 'receive-only',
        quota: 5_000_000_000,
        include: [],
        exclude: ['*.tmp', 'Drafts/'],
        rules: [{ path: 'Sales/', mode: 'send-only' }],
        pollMinSeconds: 5,
        pollMaxSeconds: null,
      },
    });
    await waitFor(() => expect(ondone).toHaveBeenCalledWith(repositoryView({ name: 'Reports' })));
  });

  it('opens the advanced options to show what is wrong there', async () => {
    const { user } = setup();
    await toFinish(user);
    await user.click(screen.getByText('Advanced options'));
    await user.type(screen.getByLabelText('Limit'), '2');
    await user.selectOptions(screen.getByLabelText('Unit'), 'MB');
    await user.click(screen.getByText('Advanced options'));
    await user.click(screen.getByRole('button', { name: 'Start syncing' }));
    expect(api.createRepository).not.toHaveBeenCalled();
    await waitFor(() => expect(screen.getByLabelText('Limit')).toHaveFocus());
    expect(screen.getByText('The limit must be at least 8 MB.')).toBeVisible();
  });

  it('shows why it failed and stays', async () => {
    let fail: (reason: unknown) => void = () => {};
    vi.mocked(api.createRepository).mockImplementation(() => new Promise((_resolve, reject) => (fail = reject)));
    const { user, ondone } = setup();
    await toFinish(user);
    const start = screen.getByRole('button', { name: 'Start syncing' });
    await user.click(start);
    expect(start).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Cancel' })).toBeDisabled();
    expect(screen.getByText('Creating the shared folder…')).toBeInTheDocument();
    fail({ code: 'relay_full', message: 'The shared storage is full.' });
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('The shared folder could not be created');
    expect(alert).toHaveTextContent('The shared storage is full.');
    expect(start).toBeEnabled();
    expect(ondone).not.toHaveBeenCalled();
  });
});

describe('leaving', () => {
  it('leaves at once when nothing was typed', async () => {
    const { user, oncancel } = setup();
    await user.click(screen.getByRole('radio', { name: 'Create a new shared folder' }));
    await user.keyboard('{Escape}');
    expect(oncancel).toHaveBeenCalledTimes(1);
  });

  it('asks first when something was typed, with Cancel or Escape', async () => {
    const { user, oncancel } = setup();
    await toStorage(user, 'create');
    await user.click(screen.getByRole('radio', { name: 'FTP or FTPS' }));
    await user.type(screen.getByLabelText(/^Server/), 'files.example.com');

    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    let dialog = screen.getByRole('alertdialog', { name: 'Leave the set-up?' });
    expect(within(dialog).getByRole('button', { name: 'Stay' })).toHaveFocus();
    await user.click(within(dialog).getByRole('button', { name: 'Stay' }));
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument();
    expect(oncancel).not.toHaveBeenCalled();

    screen.getByLabelText(/^Server/).focus();
    await user.keyboard('{Escape}');
    dialog = screen.getByRole('alertdialog', { name: 'Leave the set-up?' });
    await user.keyboard('{Escape}');
    expect(screen.queryByRole('alertdialog')).not.toBeInTheDocument();
    expect(oncancel).not.toHaveBeenCalled();

    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    await user.click(screen.getByRole('button', { name: 'Leave the set-up' }));
    expect(oncancel).toHaveBeenCalledTimes(1);
  });

  it('goes back with Back, keeping what was typed', async () => {
    const { user } = setup();
    await toStorage(user, 'create');
    await user.click(screen.getByRole('radio', { name: 'Network or local folder' }));
    await user.type(screen.getByLabelText('Folder on the network or this computer'), '/mnt/x');
    await user.click(screen.getByRole('button', { name: 'Back' }));
    expect(screen.getByRole('radio', { name: 'Create a new shared folder' })).toBeChecked();
    await next(user);
    expect(screen.getByLabelText('Folder on the network or this computer')).toHaveValue('/mnt/x');
  });
});
