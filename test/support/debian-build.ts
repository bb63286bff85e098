import { DEFAULT_BUILD_SETTINGS, type BuildSettings } from '../../builder/config.js';

/**
 * The Debian runtime the QEMU tests build: the defaults plus one extra
 * package, so the extra-package path (installed after the runtime's own,
 * recorded with its size) is part of every Debian boot. Every test that
 * builds the Debian runtime uses these packages, so one debootstrap'd tree
 * in the cache serves them all.
 */
export const testDebianSettings: BuildSettings = { ...DEFAULT_BUILD_SETTINGS, packages: ['less'] };
