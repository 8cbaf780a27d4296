/** Where things live, from this module's place in scripts/dist (or scripts/src under vitest). */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const repositoryRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** results/ at the repository root. */
export const resultsDirectory: string = path.join(repositoryRoot, 'results');

/** The gate's baseline. */
export const baselinePath: string = path.join(resultsDirectory, 'baseline.json');
