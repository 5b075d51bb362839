import { describe, expect, it } from 'vitest';
import {
  buildRelay,
  detectPlatform,
  emptyStorageFields,
  encodeAddressPart,
  fieldsFor,
  fileAddress,
  STORAGE_CHOICES,
  withWebdavFlavor,
  YANDEX_HOST,
  type StorageErrors,
  type StorageFields,
  type StorageKind,
} from './storage';

function fields(overrides: Partial<StorageFields>): StorageFields {
  return { ...emptyStorageFields(), ...overrides };
}

function relayOf(kind: StorageKind, overrides: Partial<StorageFields>): { relay: string; relayPassword: string | null } {
  const result = buildRelay(kind, fields(overrides));
  if (!result.ok) {
    throw new Error(`expected an address, got errors ${JSON.stringify(result.errors)}`);
  }
  return { relay: result.relay, relayPassword: result.relayPassword };
}

function errorsOf(kind: StorageKind, overrides: Partial<StorageFields>): StorageErrors {
  const result = buildRelay(kind, fields(overrides));
  if (result.ok) {
    throw new Error(`expected errors, got ${result.relay}`);
  }
  return result.errors;
}

describe('the storage cards', () => {
  it('offers the six kinds with their titles', () => {
    expect(STORAGE_CHOICES.map((choice) => choice.title)).toEqual([
      'Network or local folder',
      'FTP or FTPS',
      'WebDAV',
      'Amazon S3 or compatible',
      'SFTP',
      'Other cloud (through rclone)',
    ]);
  });

  it.each<[StorageKind, string[]]>([
    ['local', ['Folder on the network or this computer']],
    ['ftp', ['Server', 'Port', 'User name', 'Password', 'Folder on the server']],
    ['s3', ['Server address', 'Region', 'Bucket', 'Folder in the bucket', 'Access key ID', 'Secret access key']],
    ['sftp', ['Server', 'Port', 'User name', 'Password', 'Folder on the server']],
    ['rclone', ['rclone remote', 'Folder']],
  ])('%s asks only for its own fields', (kind, labels) => {
    expect(fieldsFor(kind, 'other').map((spec) => spec.label)).toEqual(labels);
  });

  it('asks WebDAV fields by flavour, with hints and examples', () => {
    const nextcloud = fieldsFor('webdav', 'nextcloud');
    expect(nextcloud.map((spec) => spec.label)).toEqual(['Nextcloud address', 'User name', 'Password', 'Folder']);
    expect(nextcloud[0]?.hint).toContain('https://HOST/remote.php/dav/files/USER/');
    expect(fieldsFor('webdav', 'yandex')[0]?.placeholder).toBe(YANDEX_HOST);
    expect(fieldsFor('webdav', 'other').map((spec) => spec.optional)).toEqual([false, true, true, false]);
  });

  it('gives every field a hint, and passwords a password field', () => {
    for (const choice of STORAGE_CHOICES) {
      for (const spec of fieldsFor(choice.kind, 'other')) {
        expect(spec.hint).not.toBe('');
        if (spec.key === 'password' || spec.key === 'secretKey') {
          expect(spec.type).toBe('password');
        }
      }
    }
  });

  it('shows a local path example for the platform', () => {
    expect(fieldsFor('local', 'other', 'windows')[0]?.placeholder).toBe('\\\\server\\shared\\Escale');
    expect(fieldsFor('local', 'other', 'mac')[0]?.placeholder).toBe('/Volumes/Shared/Escale');
    expect(fieldsFor('local', 'other', 'linux')[0]?.placeholder).toBe('/mnt/shared/escale');
    expect(detectPlatform('Mozilla/5.0 (Windows NT 10.0; Win64; x64)')).toBe('windows');
    expect(detectPlatform('Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)')).toBe('mac');
    expect(detectPlatform('Mozilla/5.0 (X11; Linux x86_64)')).toBe('linux');
  });

  it('fills in Yandex Disk’s server and takes it away again', () => {
    const yandex = withWebdavFlavor(emptyStorageFields(), 'yandex');
    expect(yandex.host).toBe(YANDEX_HOST);
    expect(yandex.flavor).toBe('yandex');
    expect(withWebdavFlavor(yandex, 'nextcloud').host).toBe('');
    const typed = withWebdavFlavor(fields({ host: 'cloud.example.com' }), 'yandex');
    expect(typed.host).toBe('cloud.example.com');
  });
});

describe('encodeAddressPart', () => {
  it('escapes what would change the meaning of an address and keeps letters readable', () => {
    expect(encodeAddressPart('My Files 100%?#"', 'path')).toBe('My%20Files%20100%25%3F%23%22');
    expect(encodeAddressPart('Rapports/Été', 'path')).toBe('Rapports/Été');
    expect(encodeAddressPart('ana@example.com', 'user')).toBe('ana%40example.com');
    expect(encodeAddressPart('a:b/c', 'user')).toBe('a%3Ab%2Fc');
    expect(encodeAddressPart('https://h/?a=1&b', 'query')).toBe('https://h/%3Fa%3D1%26b');
    expect(encodeAddressPart('tab\there', 'path')).toBe('tab%09here');
  });
});

describe('a network or local folder', () => {
  it.each([
    ['/mnt/share/escale', 'file:///mnt/share/escale'],
    ['/Volumes/Shared/My Relay/', 'file:///Volumes/Shared/My%20Relay'],
    ['  /srv/relay  ', 'file:///srv/relay'],
    ['C:\\Relay', 'file:///C:/Relay'],
    ['z:\\Office\\Escale\\', 'file:///Z:/Office/Escale'],
    ['D:/Sync 100%', 'file:///D:/Sync%20100%25'],
    ['\\\\nas\\shared\\escale', 'file:////nas/shared/escale'],
    ['//nas/shared/escale', 'file:////nas/shared/escale'],
    ['/home/ana/a#b?c', 'file:///home/ana/a%23b%3Fc'],
    ['file:///mnt/typed/by/hand', 'file:///mnt/typed/by/hand'],
  ])('%s becomes %s', (path, address) => {
    expect(fileAddress(path)).toBe(address);
    expect(relayOf('local', { path })).toEqual({ relay: address, relayPassword: null });
  });

  it.each([
    ['', /Choose…/],
    ['escale', /full path/],
    ['~/escale', /full path/],
    ['Z:relay', /full path/],
    ['/mnt/../etc', /“\.” or “\.\.”/],
    ['\\\\nas', /network share and folder/],
  ])('refuses %j', (path, message) => {
    expect(errorsOf('local', { path }).path).toMatch(message);
  });
});

describe('FTP and FTPS', () => {
  it('builds an FTPS address by default, without the password', () => {
    expect(relayOf('ftp', { host: 'files.example.com', user: 'ana', password: 's3cret:@/', folder: '/escale' })).toEqual({
      relay: 'ftps://ana@files.example.com/escale',
      relayPassword: 's3cret:@/',
    });
  });

  it('builds a plain FTP address with a port and an encoded folder', () => {
    expect(
      relayOf('ftp', { secure: false, host: 'Files.Example.com', port: '2121', user: 'ana', folder: 'Shared files/Escale' })
        .relay,
    ).toBe('ftp://ana@files.example.com:2121/Shared%20files/Escale');
  });

  it('leaves out the usual port and takes a port written after the server', () => {
    expect(relayOf('ftp', { host: 'h.example', port: '21', folder: 'x' }).relay).toBe('ftps://h.example/x');
    expect(relayOf('ftp', { host: 'h.example:2121', folder: 'x' }).relay).toBe('ftps://h.example:2121/x');
    expect(relayOf('ftp', { host: 'h.example:2121', port: '990', folder: 'x' }).relay).toBe('ftps://h.example:990/x');
  });

  it('is lenient with what people paste', () => {
    expect(relayOf('ftp', { host: ' ftp://files.example.com/ ', user: ' ana ', folder: '\\escale\\' }).relay).toBe(
      'ftps://ana@files.example.com/escale',
    );
  });

  it('logs in anonymously without a user name', () => {
    expect(relayOf('ftp', { host: '192.168.1.20', folder: 'pub/escale' })).toEqual({
      relay: 'ftps://192.168.1.20/pub/escale',
      relayPassword: null,
    });
  });

  it('encodes an e-mail login and writes IPv6 in brackets', () => {
    expect(relayOf('ftp', { host: '2001:db8::1', user: 'ana@example.com', folder: 'x' }).relay).toBe(
      'ftps://ana%40example.com@[2001:db8::1]/x',
    );
    expect(relayOf('ftp', { host: '[2001:DB8::1]:2121', folder: 'x' }).relay).toBe('ftps://[2001:db8::1]:2121/x');
  });

  it('says what is wrong, field by field, in plain words', () => {
    const errors = errorsOf('ftp', { host: '', port: '70000', password: 'pw', folder: '' });
    expect(errors.host).toBe('Write the name or address of the server.');
    expect(errors.port).toMatch(/1 to 65535/);
    expect(errors.password).toMatch(/user name too/);
    expect(errors.folder).toMatch(/name of the folder/);
  });

  it.each([
    ['files.example.com/escale', /only the server’s name/],
    ['ana@files.example.com', /user name in its own field/],
    ['files example.com', /does not look like a server name/],
    ['files.example.com:abc', /port/],
  ])('refuses the server %j', (host, message) => {
    expect(errorsOf('ftp', { host, folder: 'x' }).host).toMatch(message);
  });

  it('refuses . and .. in the folder', () => {
    expect(errorsOf('ftp', { host: 'h', folder: '/srv/../etc' }).folder).toMatch(/“\.” or “\.\.”/);
  });
});

describe('SFTP', () => {
  it('builds an address with a full path and no password when a key is used', () => {
    expect(relayOf('sftp', { host: 'files.example.com', user: 'ana', folder: '/srv/escale' })).toEqual({
      relay: 'sftp://ana@files.example.com/srv/escale',
      relayPassword: null,
    });
  });

  it('puts a folder without a leading / in the home folder', () => {
    expect(relayOf('sftp', { host: 'h', user: 'ana', folder: 'escale' }).relay).toBe('sftp://ana@h/~/escale');
    expect(relayOf('sftp', { host: 'h', user: 'ana', folder: '~/escale' }).relay).toBe('sftp://ana@h/~/escale');
  });

  it('keeps a port other than 22 and the password beside the address', () => {
    expect(relayOf('sftp', { host: '10.0.0.5', port: '2222', user: 'ana', password: 'pw', folder: '/srv/x' })).toEqual({
      relay: 'sftp://ana@10.0.0.5:2222/srv/x',
      relayPassword: 'pw',
    });
    expect(relayOf('sftp', { host: 'h', port: '22', folder: '/x' }).relay).toBe('sftp://h/x');
  });
});

describe('WebDAV', () => {
  it('builds the Nextcloud address from the server and the user', () => {
    expect(
      relayOf('webdav', { flavor: 'nextcloud', host: 'cloud.example.com', user: 'ana', password: 'app-pw', folder: 'Escale' }),
    ).toEqual({
      relay: 'webdavs://ana@cloud.example.com/remote.php/dav/files/ana/Escale',
      relayPassword: 'app-pw',
    });
  });

  it('keeps Nextcloud installed in a sub-folder and a pasted WebDAV address', () => {
    expect(
      relayOf('webdav', { flavor: 'nextcloud', host: 'https://example.com/nextcloud/', user: 'ana', password: 'p', folder: 'Escale' })
        .relay,
    ).toBe('webdavs://ana@example.com/nextcloud/remote.php/dav/files/ana/Escale');
    expect(
      relayOf('webdav', {
        flavor: 'nextcloud',
        host: 'https://cloud.example.com/remote.php/dav/files/ana%40example.com/',
        user: 'ana@example.com',
        password: 'p',
        folder: 'Shared/My Escale',
      }).relay,
    ).toBe('webdavs://ana%40example.com@cloud.example.com/remote.php/dav/files/ana@example.com/Shared/My%20Escale');
  });

  it('builds a Yandex Disk address', () => {
    const yandex = withWebdavFlavor(fields({ user: 'ana', password: 'p', folder: 'Escale' }), 'yandex');
    expect(buildRelay('webdav', yandex)).toEqual({
      ok: true,
      relay: 'webdavs://ana@webdav.yandex.ru/Escale',
      relayPassword: 'p',
    });
  });

  it('builds an address for another server, plain http and a port included', () => {
    expect(relayOf('webdav', { flavor: 'other', host: 'http://nas.local:8080/dav', folder: 'escale' })).toEqual({
      relay: 'webdav://nas.local:8080/dav/escale',
      relayPassword: null,
    });
    expect(relayOf('webdav', { flavor: 'other', host: 'files.example.com', user: 'bob', password: 'x', folder: 'e' }).relay).toBe(
      'webdavs://bob@files.example.com/e',
    );
    expect(relayOf('webdav', { flavor: 'other', host: 'https://files.example.com:443', folder: 'e' }).relay).toBe(
      'webdavs://files.example.com/e',
    );
  });

  it('asks Nextcloud and Yandex Disk for a user name and password', () => {
    const errors = errorsOf('webdav', { flavor: 'nextcloud', host: 'cloud.example.com', folder: 'Escale' });
    expect(errors.user).toBe('Write the user name.');
    expect(errors.password).toBe('Write the password.');
    expect(errorsOf('webdav', { flavor: 'other', host: '', folder: '' })).toEqual({
      host: 'Write the server’s address.',
      folder: 'Write the name of the folder on the storage.',
    });
  });
});

describe('S3', () => {
  it('builds an Amazon address and passes the keys as ID:SECRET', () => {
    expect(
      relayOf('s3', { region: 'eu-west-1', bucket: 'office-files', folder: 'escale', accessKeyId: 'AKIA1', secretKey: 'abc/def+' }),
    ).toEqual({ relay: 's3://office-files/escale?region=eu-west-1', relayPassword: 'AKIA1:abc/def+' });
  });

  it('adds the server address and the bucket in the path for another provider', () => {
    expect(
      relayOf('s3', { endpoint: 's3.example.com', bucket: 'bucket', accessKeyId: 'id', secretKey: 'secret' }).relay,
    ).toBe('s3://bucket?endpoint=https://s3.example.com&path_style=true');
    expect(
      relayOf('s3', {
        endpoint: 'http://192.168.1.20:9000/',
        region: 'us-east-1',
        bucket: 'escale',
        folder: '/Reports 2024/',
        accessKeyId: 'id',
        secretKey: 'secret',
      }).relay,
    ).toBe('s3://escale/Reports%202024?endpoint=http://192.168.1.20:9000&region=us-east-1&path_style=true');
  });

  it('says what is wrong in plain words', () => {
    const errors = errorsOf('s3', { endpoint: 'https://key:secret@s3.example.com', region: 'eu west', bucket: 'Office' });
    expect(errors.endpoint).toMatch(/keys out of the server address/);
    expect(errors.region).toMatch(/like eu-west-1/);
    expect(errors.bucket).toMatch(/small letters/);
    expect(errors.accessKeyId).toBe('Write the access key ID.');
    expect(errors.secretKey).toBe('Write the secret access key.');
    expect(errorsOf('s3', { bucket: 'ab', accessKeyId: 'a:b', secretKey: 's' })).toEqual({
      bucket: 'A bucket name has 3 to 63 small letters, digits, dots or hyphens.',
      accessKeyId: 'An access key ID has no “:” in it. Check what you pasted.',
    });
  });
});

describe('rclone', () => {
  it('builds rclone:REMOTE:folder', () => {
    expect(relayOf('rclone', { remote: 'gdrive', folder: 'Escale/Reports/' })).toEqual({
      relay: 'rclone:gdrive:Escale/Reports',
      relayPassword: null,
    });
    expect(relayOf('rclone', { remote: ' my nas: ', folder: '/srv/escale' }).relay).toBe('rclone:my nas:/srv/escale');
  });

  it('refuses a remote rclone would not know and an empty folder', () => {
    expect(errorsOf('rclone', { remote: '-x', folder: '' })).toEqual({
      remote: 'A remote name has letters, digits, spaces and _ - . + @ only, as rclone config shows it.',
      folder: 'Write the name of the folder on the storage.',
    });
    expect(errorsOf('rclone', { remote: '', folder: 'x' }).remote).toBe('Write the name of the rclone remote.');
  });
});

describe('passwords never go in the address', () => {
  it.each<[StorageKind, Partial<StorageFields>]>([
    ['ftp', { host: 'h', user: 'ana', password: 'Hunter2!', folder: 'x' }],
    ['sftp', { host: 'h', user: 'ana', password: 'Hunter2!', folder: 'x' }],
    ['webdav', { flavor: 'nextcloud', host: 'h', user: 'ana', password: 'Hunter2!', folder: 'x' }],
    ['s3', { bucket: 'bucket', accessKeyId: 'AKIA', secretKey: 'Hunter2!' }],
  ])('%s', (kind, overrides) => {
    const { relay, relayPassword } = relayOf(kind, overrides);
    expect(relay).not.toContain('Hunter2');
    expect(relayPassword).toContain('Hunter2!');
  });
});
