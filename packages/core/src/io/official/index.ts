/** Importing what the methods' official code saves. */
export { detectOfficial, importOfficial, officialSources, type ImportedAdapter } from './import.js';
export { exportOfficial } from './export.js';
export { loadOfficialIfAny, readOfficialFiles } from './node.js';
export type { ExportSource, ImportedParts, OfficialFiles, OfficialImportOptions, OfficialImporter } from './types.js';
