export { build, defaultCacheDir, switchCurrent, type BuildOptions, type BuildResult } from './build.js';
export { BuildStepError } from './errors.js';
export { BUILD_FILES, MANIFEST_NAME, parseManifest, type BuildFileName, type Manifest, type ManifestFile, type PackageRef } from './manifest.js';
export { RUNTIME_MODULES } from './initrd.js';
export { applySwitches, DEFAULT_BUILD_SETTINGS, parseBuildConfig, PINNED_PACKAGES, type BuildSettings, type BuildSwitches } from './config.js';
export { BUILD_STEPS, progressFor, type BuildProgress, type BuildStep } from './progress.js';
