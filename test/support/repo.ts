import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root: tests run from dist/test/..., three folders below it. */
export const repoRoot = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
