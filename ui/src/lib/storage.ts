// The shared storage ("relay") the computers pass files through: the kinds the
// set-up wizard offers, the fields each one asks for, and the relay address
// built from them.
//
// Addresses follow docs/cli.md, "Relay addresses", in the canonical form the
// desktop app prints back (default ports left out, the same characters
// percent-encoded), so the address the check reports is the one built here.
// A password never goes into an address: it is returned beside it, as the
// relayPassword the commands take (for S3: "KEY_ID:SECRET").

export type StorageKind = 'local' | 'ftp' | 'webdav' | 's3' | 'sftp' | 'rclone';
export type WebdavFlavor = 'nextcloud' | 'yandex' | 'other';
export type Platform = 'windows' | 'mac' | 'linux';

/** Every text field of every kind; a kind uses only some of them. */
export interface StorageFields {
  path: string;
  host: string;
  port: string;
  user: string;
  password: string;
  folder: string;
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretKey: string;
  remote: string;
  /** FTP only: FTPS (explicit TLS). */
  secure: boolean;
  /** WebDAV only. */
  flavor: WebdavFlavor;
}

export type TextFieldKey = Exclude<keyof StorageFields, 'secure' | 'flavor'>;
export type StorageErrors = Partial<Record<TextFieldKey, string>>;

export type RelaySetup =
  | { ok: true; relay: string; relayPassword: string | null }
  | { ok: false; errors: StorageErrors };

export interface StorageChoice {
  kind: StorageKind;
  title: string;
  description: string;
}

/** The storage cards, in the order the wizard shows them. */
export const STORAGE_CHOICES: readonly StorageChoice[] = [
  {
    kind: 'local',
    title: 'Network or local folder',
    description: 'A shared folder on the office network, a NAS, or a drive every computer can reach.',
  },
  { kind: 'ftp', title: 'FTP or FTPS', description: 'A file server or a web hosting account reached by FTP.' },
  { kind: 'webdav', title: 'WebDAV', description: 'Nextcloud, Yandex Disk, a NAS or any server that offers WebDAV.' },
  {
    kind: 's3',
    title: 'Amazon S3 or compatible',
    description: 'A bucket on Amazon S3, Wasabi, Backblaze, MinIO or another S3 service.',
  },
  { kind: 'sftp', title: 'SFTP', description: 'A server you can reach with SSH.' },
  {
    kind: 'rclone',
    title: 'Other cloud (through rclone)',
    description: 'Dropbox, Google Drive, OneDrive and more, through a remote set up in rclone.',
  },
];

export const WEBDAV_FLAVORS: readonly { flavor: WebdavFlavor; title: string }[] = [
  { flavor: 'nextcloud', title: 'Nextcloud' },
  { flavor: 'yandex', title: 'Yandex Disk' },
  { flavor: 'other', title: 'Other WebDAV server' },
];

export const YANDEX_HOST = 'webdav.yandex.ru';

export function emptyStorageFields(): StorageFields {
  return {
    path: '',
    host: '',
    port: '',
    user: '',
    password: '',
    folder: '',
    endpoint: '',
    region: '',
    bucket: '',
    accessKeyId: '',
    secretKey: '',
    remote: '',
    secure: true,
    flavor: 'nextcloud',
  };
}

/**
 * The fields after choosing a WebDAV flavour: Yandex Disk has one server, so
 * it is filled in; leaving Yandex Disk empties it again.
 */
export function withWebdavFlavor(fields: StorageFields, flavor: WebdavFlavor): StorageFields {
  let host = fields.host;
  if (flavor === 'yandex' && host.trim() === '') {
    host = YANDEX_HOST;
  } else if (flavor !== 'yandex' && host.trim() === YANDEX_HOST) {
    host = '';
  }
  return { ...fields, flavor, host };
}

// ---------------------------------------------------------------- field descriptions

export interface FieldSpec {
  key: TextFieldKey;
  label: string;
  placeholder: string;
  hint: string;
  type: 'text' | 'password';
  /** May be left empty. */
  optional: boolean;
  autocomplete: 'off' | 'username' | 'current-password';
  inputmode?: 'numeric' | 'url';
}

function field(
  key: TextFieldKey,
  label: string,
  placeholder: string,
  hint: string,
  extra: Partial<Omit<FieldSpec, 'key' | 'label' | 'placeholder' | 'hint'>> = {},
): FieldSpec {
  return { key, label, placeholder, hint, type: 'text', optional: false, autocomplete: 'off', ...extra };
}

const LOCAL_PLACEHOLDER: Record<Platform, string> = {
  windows: '\\\\server\\shared\\Escale',
  mac: '/Volumes/Shared/Escale',
  linux: '/mnt/shared/escale',
};

const PASSWORD_KEPT = 'Kept in this computer’s password store, never in a file.';

/** The fields a kind of storage asks for, in order. FTP adds the "secure connection" checkbox. */
export function fieldsFor(kind: StorageKind, flavor: WebdavFlavor, platform: Platform = 'windows'): FieldSpec[] {
  const user = (hint: string, optional: boolean, placeholder = 'ana'): FieldSpec =>
    field('user', 'User name', placeholder, hint, { optional, autocomplete: 'username' });
  const password = (hint: string, optional: boolean): FieldSpec =>
    field('password', 'Password', '', hint, { type: 'password', optional, autocomplete: 'current-password' });
  switch (kind) {
    case 'local':
      return [
        field(
          'path',
          'Folder on the network or this computer',
          LOCAL_PLACEHOLDER[platform],
          'The full path of a folder every computer can reach, for example \\\\server\\shared\\Escale or ' +
            'Z:\\Escale on Windows, /Volumes/Shared/Escale on a Mac. The folder must already exist.',
        ),
      ];
    case 'ftp':
      return [
        field('host', 'Server', 'files.example.com', 'The name or address of the FTP server.'),
        field('port', 'Port', '21', 'Leave empty for the usual port (21).', { optional: true, inputmode: 'numeric' }),
        user('Leave empty to log in as a guest (anonymous).', true),
        password(PASSWORD_KEPT, true),
        field(
          'folder',
          'Folder on the server',
          '/escale',
          'As your FTP program shows it, for example /escale. The folder must already exist.',
        ),
      ];
    case 'webdav': {
      const folder = field(
        'folder',
        'Folder',
        'Escale',
        flavor === 'other'
          ? 'A folder under the server address, for example Escale. It must already exist.'
          : 'A folder in your files, for example Escale or Shared/Escale. It must already exist.',
      );
      if (flavor === 'nextcloud') {
        return [
          field(
            'host',
            'Nextcloud address',
            'https://cloud.example.com',
            'The address you open Nextcloud with in your browser. You may also paste the WebDAV address ' +
              'shown in Files → Settings, like https://HOST/remote.php/dav/files/USER/.',
            { inputmode: 'url' },
          ),
          user('Your Nextcloud user name.', false),
          password('Best: an app password, made in Nextcloud under Settings → Security. ' + PASSWORD_KEPT, false),
          folder,
        ];
      }
      if (flavor === 'yandex') {
        return [
          field('host', 'Server address', YANDEX_HOST, `Yandex Disk’s server is ${YANDEX_HOST}.`, { inputmode: 'url' }),
          user('Your Yandex login.', false, 'ana.example'),
          password('An app password made in your Yandex ID settings (Security → App passwords). ' + PASSWORD_KEPT, false),
          folder,
        ];
      }
      return [
        field(
          'host',
          'Server address',
          'https://files.example.com/dav',
          'The WebDAV address your provider or administrator gave you.',
          { inputmode: 'url' },
        ),
        user('Leave empty if the server asks for no login.', true),
        password(PASSWORD_KEPT, true),
        folder,
      ];
    }
    case 's3':
      return [
        field(
          'endpoint',
          'Server address',
          'https://s3.eu-central-1.wasabisys.com',
          'Leave empty for Amazon S3. For another provider, the S3 address they give.',
          { optional: true, inputmode: 'url' },
        ),
        field('region', 'Region', 'eu-west-1', 'As your provider names it. Leave empty if they do not mention one.', {
          optional: true,
        }),
        field('bucket', 'Bucket', 'office-files', 'The bucket must already exist.'),
        field('folder', 'Folder in the bucket', 'escale', 'Leave empty to use the whole bucket.', { optional: true }),
        field('accessKeyId', 'Access key ID', 'AKIAIOSFODNN7EXAMPLE', 'From your provider’s security or access keys page.'),
        field('secretKey', 'Secret access key', '', 'Shown once when the key was made. ' + PASSWORD_KEPT, {
          type: 'password',
          autocomplete: 'current-password',
        }),
      ];
    case 'sftp':
      return [
        field('host', 'Server', 'files.example.com', 'The name or address of the server.'),
        field('port', 'Port', '22', 'Leave empty for the usual port (22).', { optional: true, inputmode: 'numeric' }),
        user('Leave empty to use your user name on this computer.', true),
        password('Leave empty if this computer logs in with a key. ' + PASSWORD_KEPT, true),
        field(
          'folder',
          'Folder on the server',
          '/srv/escale',
          'A full path like /srv/escale, or a folder in your home folder on the server, like escale. ' +
            'It must already exist.',
        ),
      ];
    case 'rclone':
      return [
        field('remote', 'rclone remote', 'gdrive', 'The name of a remote you set up with “rclone config”.'),
        field('folder', 'Folder', 'Escale/Reports', 'The folder on that remote. It must already exist.'),
      ];
  }
}

// ---------------------------------------------------------------- encoding

type EncodeSet = 'path' | 'user' | 'query';

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Percent-encodes what would change meaning when the address is read back,
 * like the desktop app does: control characters, space, % ? # " everywhere,
 * plus @ : / in a user name and & = in an option value. Other characters,
 * letters of any alphabet included, stay readable.
 */
export function encodeAddressPart(text: string, set: EncodeSet): string {
  let out = '';
  for (const c of text) {
    const escape =
      CONTROL.test(c) ||
      ' %?#"'.includes(c) ||
      (set === 'user' && '@:/'.includes(c)) ||
      (set === 'query' && '&='.includes(c));
    if (escape) {
      for (const byte of new TextEncoder().encode(c)) {
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
      }
    } else {
      out += c;
    }
  }
  return out;
}

/** Decodes %XX escapes in something pasted; leaves the text as it is when they are not valid. */
function decodeLeniently(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

// ---------------------------------------------------------------- pieces

const MESSAGES = {
  hostMissing: 'Write the name or address of the server.',
  hostInvalid: 'This does not look like a server name. Write it like files.example.com or 192.168.1.20.',
  hostWithFolder: 'Write only the server’s name here, like files.example.com: the folder has its own field.',
  hostWithUser: 'Write the user name in its own field, not in the server’s name.',
  port: 'The port is a number from 1 to 65535. Leave it empty for the usual one.',
  folderMissing: 'Write the name of the folder on the storage.',
  folderDots: 'Write the folder’s full path, without “.” or “..” in it.',
  passwordWithoutUser: 'Write the user name too, or leave the password empty.',
  userMissing: 'Write the user name.',
  passwordMissing: 'Write the password.',
} as const;

interface HostPort {
  /** As written in an address: an IPv6 address in brackets. */
  host: string;
  port: number | null;
}

/** A port number from its field; `undefined` when invalid. */
function parsePort(text: string): number | null | undefined {
  const value = text.trim();
  if (value === '') return null;
  if (!/^\d{1,5}$/.test(value)) return undefined;
  const port = Number(value);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address; a message when it is not one. */
function parseHostPort(text: string): HostPort | string {
  if (text === '') return MESSAGES.hostMissing;
  if (text.includes('@')) return MESSAGES.hostWithUser;
  let host = text;
  let port: string | null = null;
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d*))?$/.exec(text);
  if (bracketed) {
    host = `[${(bracketed[1] ?? '').toLowerCase()}]`;
    port = bracketed[2] || null;
  } else if ((text.match(/:/g) ?? []).length > 1) {
    if (!/^[0-9a-fA-F:.]+$/.test(text)) return MESSAGES.hostInvalid;
    host = `[${text.toLowerCase()}]`;
  } else {
    const colon = text.indexOf(':');
    if (colon !== -1) {
      host = text.slice(0, colon);
      port = text.slice(colon + 1);
    }
    if (!/^[\p{L}\p{N}._-]+$/u.test(host)) return MESSAGES.hostInvalid;
    host = host.toLowerCase();
  }
  if (port === null || port === '') return { host, port: null };
  const parsed = parsePort(port);
  return parsed === undefined ? MESSAGES.port : { host, port: parsed };
}

interface ServerAddress extends HostPort {
  https: boolean | null;
  /** Folder parts after the server, decoded. */
  path: string[];
}

/** A server typed with or without `scheme://` in front and a path behind; a message when it is not one. */
function parseServerAddress(text: string, allowPath: boolean): ServerAddress | string {
  let rest = text.trim();
  let https: boolean | null = null;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (scheme) {
    const name = (scheme[1] ?? '').toLowerCase();
    https = name === 'https' || name === 'webdavs' ? true : name === 'http' || name === 'webdav' ? false : null;
    rest = rest.slice(scheme[0].length);
  }
  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  const pathText = slash === -1 ? '' : rest.slice(slash);
  const path = splitFolder(decodeLeniently(pathText));
  if (typeof path === 'string') return path;
  if (path.length > 0 && !allowPath) return MESSAGES.hostWithFolder;
  const hostPort = parseHostPort(authority);
  if (typeof hostPort === 'string') return hostPort;
  return { ...hostPort, https, path };
}

/** The parts of a folder path; `\` counts as `/`; a message for `.`, `..` or control characters. */
function splitFolder(text: string): string[] | string {
  const parts = text
    .trim()
    .split(/[/\\]+/)
    .filter((part) => part !== '');
  if (parts.some((part) => part === '.' || part === '..')) return MESSAGES.folderDots;
  if (parts.some((part) => CONTROL.test(part))) return 'The folder contains a character that cannot be used.';
  return parts;
}

function encodePath(parts: readonly string[]): string {
  return parts.map((part) => `/${encodeAddressPart(part, 'path')}`).join('');
}

function userPart(user: string): string {
  return user === '' ? '' : `${encodeAddressPart(user, 'user')}@`;
}

function portPart(port: number | null, defaultPort: number): string {
  return port === null || port === defaultPort ? '' : `:${port}`;
}

// ---------------------------------------------------------------- the kinds

/** A local or network folder as a file:// address; a message when it is not a full path. */
export function fileAddress(pathText: string): string | { error: string } {
  const text = pathText.trim();
  if (text === '') {
    return { error: 'Write the folder’s full path, or press Choose… to pick it.' };
  }
  if (/^file:\/\//i.test(text)) {
    return text;
  }
  const notFull = {
    error:
      'Write the folder’s full path, for example \\\\server\\shared\\Escale, Z:\\Escale or /Volumes/Shared/Escale.',
  };
  let prefix: string;
  let rest: string;
  const drive = /^([A-Za-z]):(?:[\\/]|$)/.exec(text);
  if (drive) {
    prefix = `file:///${(drive[1] ?? '').toUpperCase()}:/`;
    rest = text.slice(2);
  } else if (/^(\\\\|\/\/)[^\\/]/.test(text)) {
    // A Windows network share, \\server\share: written file:////server/share.
    prefix = 'file:////';
    rest = text;
  } else if (text.startsWith('/')) {
    prefix = 'file:///';
    rest = text;
  } else {
    return notFull;
  }
  // A backslash is a separator on Windows only: elsewhere it may be part of a name.
  const separators = prefix === 'file:///' ? /\/+/ : /[\\/]+/;
  const parts = rest.split(separators).filter((part) => part !== '');
  if (parts.some((part) => part === '.' || part === '..')) return { error: MESSAGES.folderDots };
  if (parts.some((part) => CONTROL.test(part))) return { error: 'The path contains a character that cannot be used.' };
  if (prefix === 'file:////' && parts.length < 2) {
    return { error: 'Write the network share and folder, like \\\\server\\shared\\Escale.' };
  }
  return prefix + parts.map((part) => encodeAddressPart(part, 'path')).join('/');
}

interface Built {
  relay: string;
  relayPassword: string | null;
}

function buildServer(
  scheme: 'ftp' | 'ftps' | 'sftp',
  defaultPort: number,
  fields: StorageFields,
  errors: StorageErrors,
): Built | null {
  const server = parseServerAddress(fields.host, false);
  if (typeof server === 'string') errors.host = server;
  const port = parsePort(fields.port);
  if (port === undefined) errors.port = MESSAGES.port;
  const user = fields.user.trim();
  if (user !== '' && CONTROL.test(user)) errors.user = 'The user name contains a character that cannot be used.';
  if (fields.password !== '' && user === '' && scheme !== 'sftp') errors.password = MESSAGES.passwordWithoutUser;
  let folderText = fields.folder.trim();
  if (folderText === '') {
    errors.folder = MESSAGES.folderMissing;
  }
  if (scheme === 'sftp' && folderText !== '' && !/^[/\\~]/.test(folderText)) {
    // A relative folder is in the account's home folder, written /~/folder.
    folderText = `~/${folderText}`;
  }
  const folder = splitFolder(folderText);
  if (typeof folder === 'string') errors.folder = folder;
  if (typeof server === 'string' || port === undefined || typeof folder === 'string' || Object.keys(errors).length > 0) {
    return null;
  }
  const chosenPort = port ?? server.port;
  const relay = `${scheme}://${userPart(user)}${server.host}${portPart(chosenPort, defaultPort)}${encodePath(folder)}`;
  return { relay, relayPassword: fields.password === '' ? null : fields.password };
}

function buildWebdav(fields: StorageFields, errors: StorageErrors): Built | null {
  const flavor = fields.flavor;
  const user = fields.user.trim();
  if (flavor !== 'other' && user === '') errors.user = MESSAGES.userMissing;
  if (flavor !== 'other' && fields.password === '') errors.password = MESSAGES.passwordMissing;
  if (flavor === 'other' && fields.password !== '' && user === '') errors.password = MESSAGES.passwordWithoutUser;
  if (CONTROL.test(user)) errors.user = 'The user name contains a character that cannot be used.';
  const hostText = fields.host.trim() === '' && flavor === 'yandex' ? YANDEX_HOST : fields.host;
  const server = parseServerAddress(hostText, true);
  if (typeof server === 'string') errors.host = server === MESSAGES.hostMissing ? 'Write the server’s address.' : server;
  const folder = splitFolder(fields.folder);
  if (typeof folder === 'string') errors.folder = folder;
  else if (folder.length === 0) errors.folder = MESSAGES.folderMissing;
  if (typeof server === 'string' || typeof folder === 'string' || Object.keys(errors).length > 0) {
    return null;
  }
  let base = server.path;
  if (flavor === 'nextcloud' && !base.includes('remote.php')) {
    base = [...base, 'remote.php', 'dav', 'files', user];
  }
  const https = server.https ?? true;
  const scheme = https ? 'webdavs' : 'webdav';
  const port = portPart(server.port, https ? 443 : 80);
  const relay = `${scheme}://${userPart(user)}${server.host}${port}${encodePath([...base, ...folder])}`;
  return { relay, relayPassword: fields.password === '' ? null : fields.password };
}

function buildS3(fields: StorageFields, errors: StorageErrors): Built | null {
  let endpoint: string | null = null;
  const endpointText = fields.endpoint.trim();
  if (endpointText !== '') {
    const server = parseServerAddress(endpointText, true);
    if (typeof server === 'string') {
      errors.endpoint =
        server === MESSAGES.hostWithUser
          ? 'Leave the keys out of the server address: they have their own fields.'
          : 'This does not look like a server address. Write it like https://s3.example.com.';
    } else {
      const scheme = server.https === false ? 'http' : 'https';
      endpoint = `${scheme}://${server.host}${server.port === null ? '' : `:${server.port}`}${encodePath(server.path)}`;
    }
  }
  const region = fields.region.trim();
  if (region !== '' && !/^[A-Za-z0-9_-]+$/.test(region)) {
    errors.region = 'A region is written with letters, digits and hyphens, like eu-west-1.';
  }
  const bucket = fields.bucket.trim();
  if (bucket === '') {
    errors.bucket = 'Write the bucket’s name.';
  } else if (/[A-Z]/.test(bucket)) {
    errors.bucket = 'Bucket names are written in small letters.';
  } else if (!/^[a-z0-9._-]{3,63}$/.test(bucket)) {
    errors.bucket = 'A bucket name has 3 to 63 small letters, digits, dots or hyphens.';
  }
  const folder = splitFolder(fields.folder);
  if (typeof folder === 'string') errors.folder = folder;
  const keyId = fields.accessKeyId.trim();
  if (keyId === '') errors.accessKeyId = 'Write the access key ID.';
  else if (keyId.includes(':')) errors.accessKeyId = 'An access key ID has no “:” in it. Check what you pasted.';
  if (fields.secretKey.trim() === '') errors.secretKey = 'Write the secret access key.';
  if (typeof folder === 'string' || Object.keys(errors).length > 0) {
    return null;
  }
  const options: string[] = [];
  if (endpoint !== null) options.push(`endpoint=${encodeAddressPart(endpoint, 'query')}`);
  if (region !== '') options.push(`region=${encodeAddressPart(region, 'query')}`);
  // Self-hosted and compatible services want the bucket in the path; Amazon in the host name.
  if (endpoint !== null) options.push('path_style=true');
  const query = options.length > 0 ? `?${options.join('&')}` : '';
  return {
    relay: `s3://${bucket}${encodePath(folder)}${query}`,
    relayPassword: `${keyId}:${fields.secretKey.trim()}`,
  };
}

function buildRclone(fields: StorageFields, errors: StorageErrors): Built | null {
  const remote = fields.remote.trim().replace(/:$/, '');
  if (remote === '') {
    errors.remote = 'Write the name of the rclone remote.';
  } else if (remote.startsWith('-') || !/^[\p{L}\p{N}_.+@ -]+$/u.test(remote)) {
    errors.remote = 'A remote name has letters, digits, spaces and _ - . + @ only, as rclone config shows it.';
  }
  const folder = fields.folder.trim().replace(/\/+$/, '');
  if (folder === '') errors.folder = MESSAGES.folderMissing;
  else if (CONTROL.test(folder)) errors.folder = 'The folder contains a character that cannot be used.';
  if (Object.keys(errors).length > 0) return null;
  return { relay: `rclone:${remote}:${folder}`, relayPassword: null };
}

/** Checks the fields of a kind and builds its relay address and password; or says what to fix, field by field. */
export function buildRelay(kind: StorageKind, fields: StorageFields): RelaySetup {
  const errors: StorageErrors = {};
  let built: Built | null = null;
  switch (kind) {
    case 'local': {
      const address = fileAddress(fields.path);
      if (typeof address === 'string') built = { relay: address, relayPassword: null };
      else errors.path = address.error;
      break;
    }
    case 'ftp':
      built = buildServer(fields.secure ? 'ftps' : 'ftp', 21, fields, errors);
      break;
    case 'sftp':
      built = buildServer('sftp', 22, fields, errors);
      break;
    case 'webdav':
      built = buildWebdav(fields, errors);
      break;
    case 's3':
      built = buildS3(fields, errors);
      break;
    case 'rclone':
      built = buildRclone(fields, errors);
      break;
  }
  if (built === null || Object.keys(errors).length > 0) {
    return { ok: false, errors };
  }
  return { ok: true, ...built };
}

/** The platform the app runs on, from the browser's own report. */
export function detectPlatform(userAgent: string): Platform {
  if (/Windows/i.test(userAgent)) return 'windows';
  if (/Mac OS X|Macintosh/i.test(userAgent)) return 'mac';
  return 'linux';
}
