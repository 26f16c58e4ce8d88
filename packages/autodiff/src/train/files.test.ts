import { describe, expect, it } from 'vitest';
import { parseCsv, parseDataFile, parseJsonl } from './files.js';

describe('training data files', () => {
  it('JSONL with text or input_ids, labels as numbers or names; blank lines skipped', () => {
    expect(parseJsonl('{"text":"a b","label":1}\n\n{"input_ids":[1,2],"label":"LABEL_0"}\n', 'd.jsonl')).toEqual([
      { text: 'a b', label: 1 },
      { input_ids: [1, 2], label: 'LABEL_0' },
    ]);
  });
  it('CSV with quoting, doubled quotes and newlines inside quotes', () => {
    expect(parseCsv('label,text\n1,"hello, ""world"""\n0,"two\nlines"\n', 'd.csv')).toEqual([
      { text: 'hello, "world"', label: 1 },
      { text: 'two\nlines', label: 0 },
    ]);
  });
  it('malformed files name the file, line and field', () => {
    expect(() => parseJsonl('{"text":"ok","label":0}\n{"text": }\n', 'd.jsonl')).toThrow(/not valid JSON.*file d\.jsonl, field line 2/);
    expect(() => parseJsonl('{"label":0}\n', 'd.jsonl')).toThrow(/no "text" string.*line 1/);
    expect(() => parseJsonl('{"text":"x","label":[1]}\n', 'd.jsonl')).toThrow(/"label" must be/);
    expect(() => parseCsv('label,text\n1,a,b\n', 'd.csv')).toThrow(/wrong number of fields.*line 2.*expected 2, found 3/);
    expect(() => parseCsv('label,body\n', 'd.csv')).toThrow(/no "text" column/);
    expect(() => parseCsv('text,label\n"open,1\n', 'd.csv')).toThrow(/unterminated/);
    expect(() => parseDataFile('', 'd.txt')).toThrow(/unknown data file type/);
  });
  it('empty data files are a DatasetError naming the file', () => {
    expect(() => parseDataFile('\n\n', 'e.jsonl')).toThrow(expect.objectContaining({ name: 'DatasetError', message: expect.stringMatching(/no examples.*file e\.jsonl/) }));
    expect(() => parseDataFile('text,label\n', 'e.csv')).toThrow(/no examples.*file e\.csv/);
    expect(() => parseDataFile('', 'e.csv')).toThrow(/CSV file is empty.*file e\.csv/);
  });
});
