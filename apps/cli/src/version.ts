/** The CLI's version: its package.json, one folder up from both src/ (tests) and dist/ (the bin). */
import { createRequire } from 'node:module';

export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
