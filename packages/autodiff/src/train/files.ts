/**
 * Training data files → examples. JSONL: one object per line with `text` (or `input_ids`) and, for
 * classification, `label`. CSV: a header row naming a `text` column (and `label`), RFC 4180 quoting.
 * Malformed input is a DatasetError naming the file, line and field.
 */
import { DatasetError } from '../errors.js';
import type { Example } from './data.js';

export function parseJsonl(text: string, file: string): Example[] {
  const out: Example[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const where = { file, field: `line ${i + 1}` };
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new DatasetError(`line is not valid JSON: ${(e as Error).message}`, where);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DatasetError('line is not a JSON object', { ...where, found: typeof v });
    const o = v as Record<string, unknown>;
    const ex: Example = {};
    if (typeof o['text'] === 'string') ex.text = o['text'];
    else if (Array.isArray(o['input_ids']) && o['input_ids'].every((t) => Number.isInteger(t))) ex.input_ids = o['input_ids'] as number[];
    else throw new DatasetError('line has no "text" string or "input_ids" integer array', { ...where, found: Object.keys(o).join(', ') || 'no fields' });
    if (o['label'] !== undefined) {
      if (typeof o['label'] !== 'number' && typeof o['label'] !== 'string') throw new DatasetError('"label" must be a number or a string', { ...where, found: JSON.stringify(o['label']) });
      ex.label = o['label'];
    }
    out.push(ex);
  });
  return out;
}

/** Split CSV text into rows of fields (quotes, doubled quotes, newlines inside quotes). */
function csvRows(text: string, file: string): Array<{ line: number; fields: string[] }> {
  const rows: Array<{ line: number; fields: string[] }> = [];
  let field = '';
  let fields: string[] = [];
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line++;
        field += ch;
      }
      continue;
    }
    if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      if (!(fields.length === 1 && fields[0] === '')) rows.push({ line: rowLine, fields });
      fields = [];
      field = '';
      line++;
      rowLine = line;
    } else field += ch;
  }
  if (quoted) throw new DatasetError('unterminated quoted field', { file, field: `line ${rowLine}` });
  fields.push(field);
  if (!(fields.length === 1 && fields[0] === '')) rows.push({ line: rowLine, fields });
  return rows;
}

export function parseCsv(text: string, file: string): Example[] {
  const rows = csvRows(text, file);
  if (rows.length === 0) throw new DatasetError('CSV file is empty', { file, expected: 'a header row with a "text" column' });
  const header = rows[0]!.fields.map((h) => h.trim().toLowerCase());
  const ti = header.indexOf('text');
  const li = header.indexOf('label');
  if (ti < 0) throw new DatasetError('CSV header has no "text" column', { file, field: 'line 1', found: header.join(',') });
  return rows.slice(1).map(({ line, fields }) => {
    if (fields.length !== header.length) throw new DatasetError('CSV row has the wrong number of fields', { file, field: `line ${line}`, expected: header.length, found: fields.length });
    const ex: Example = { text: fields[ti]! };
    if (li >= 0) {
      const raw = fields[li]!.trim();
      if (raw === '') throw new DatasetError('CSV row has an empty label', { file, field: `line ${line}, column label` });
      ex.label = /^-?\d+$/.test(raw) ? Number(raw) : raw;
    }
    return ex;
  });
}

/** Parse by extension (.jsonl / .json lines, .csv). */
export function parseDataFile(text: string, file: string): Example[] {
  let rows: Example[];
  if (/\.csv$/i.test(file)) rows = parseCsv(text, file);
  else if (/\.jsonl?$/i.test(file)) rows = parseJsonl(text, file);
  else throw new DatasetError('unknown data file type', { file, expected: '.jsonl or .csv' });
  // Named here, where the file is known (the trainer's own check cannot name it).
  if (rows.length === 0) throw new DatasetError('data file has no examples', { file, expected: 'at least one example', found: 0 });
  return rows;
}
