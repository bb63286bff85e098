import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { explainFailure, parseDepends, stepFailure } from '../../builder/build.js';
import { failureLine } from '../../builder/command.js';
import { BuildStepError } from '../../builder/errors.js';

const context = { release: 'bookworm', out: '/srv/boot-assets' };

test("apt's and the file system's words become what they mean for the build", () => {
  // apt-get 2.6's last stderr lines, as CommandError.detail keeps them.
  assert.equal(
    explainFailure("E: Version '9.9' for 'xen-hypervisor-4.17-amd64' was not found", undefined, context),
    'package xen-hypervisor-4.17-amd64=9.9 not found in bookworm',
  );
  assert.equal(explainFailure('E: Unable to locate package nosuch', undefined, context), 'package nosuch not found in bookworm');
  assert.equal(
    explainFailure(
      "E: Failed to fetch http://deb.debian.org/debian/pool/main/i/ipxe/ipxe_1.0.0%2bgit_all.deb  Temporary failure resolving 'deb.debian.org'",
      undefined,
      context,
    ),
    "cannot reach the apt mirror: Temporary failure resolving 'deb.debian.org' (fetching http://deb.debian.org/debian/pool/main/i/ipxe/ipxe_1.0.0%2bgit_all.deb)",
  );
  assert.equal(
    explainFailure('ENOSPC: no space left on device, write', { code: 'ENOSPC' }, context),
    `no space left on device (under /srv/boot-assets or ${tmpdir()})`,
  );
  assert.equal(
    explainFailure('ENOSPC: no space left on device, copyfile', { code: 'ENOSPC', path: '/srv/boot-assets/builds/.partial-1/xen.efi' }, context),
    'no space left on device writing /srv/boot-assets/builds/.partial-1/xen.efi',
  );
  assert.equal(
    explainFailure('EACCES: permission denied, open', { code: 'EACCES', path: '/srv/x' }, context),
    'permission denied on /srv/x: EACCES: permission denied, open',
  );
  assert.equal(explainFailure('something else', undefined, context), 'something else');
});

test("a failure inside a step is that step's error; the errno is found through causes", () => {
  const inner = new BuildStepError('resolve', 'xen-hypervisor-4.17-amd64=9.9', "E: Version '9.9' for 'xen-hypervisor-4.17-amd64' was not found");
  const outer = stepFailure('fetch packages', inner, context);
  assert.equal(outer.step, 'fetch packages');
  assert.equal(outer.reason, 'package xen-hypervisor-4.17-amd64=9.9 not found in bookworm');
  assert.equal(outer.cause, inner);
  assert.equal(failureLine(outer), 'rackboot build: step "fetch packages" failed: package xen-hypervisor-4.17-amd64=9.9 not found in bookworm');

  const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const wrapped = stepFailure('initrd', new BuildStepError('unpack', 'ipxe', full.message, { cause: full }), context);
  assert.equal(wrapped.step, 'initrd');
  assert.match(wrapped.reason, /^no space left on device/);
  assert.equal(failureLine(wrapped), `rackboot build: step "initrd" failed: ${wrapped.reason}`);

  const same = new BuildStepError('publish', undefined, 'cannot switch current');
  assert.equal(stepFailure('publish', same, context), same, "already the step's own error");
  assert.equal(
    failureLine(new BuildStepError('unpack', 'ipxe', 'dpkg-deb: bad archive')),
    'rackboot build: step "unpack" failed for package ipxe: dpkg-deb: bad archive',
  );
  assert.equal(failureLine(new Error('odd')), 'rackboot build: failed: odd');
});

test('Depends entries keep the exact version a meta package names', () => {
  assert.deepEqual(parseDepends('linux-image-6.1.0-50-amd64 (= 6.1.176-1)'), [{ name: 'linux-image-6.1.0-50-amd64', exactVersion: '6.1.176-1' }]);
  assert.deepEqual(parseDepends('kmod, linux-base (>= 4.3~), initramfs-tools | linux-initramfs-tool, libc6:amd64 (= 2.36-9)'), [
    { name: 'kmod' },
    { name: 'linux-base' },
    { name: 'initramfs-tools' },
    { name: 'libc6', exactVersion: '2.36-9' },
  ]);
  assert.deepEqual(parseDepends(''), []);
});
