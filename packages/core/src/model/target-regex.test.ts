/**
 * `target_modules` regexes come from untrusted adapter_config.json files: matching must stay
 * linear in the pattern and the path (no catastrophic backtracking), and any pattern the engine
 * cannot take must be a ConfigError naming the field (issue 15, D1 and D4).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { presetShape } from './presets.js';
import { matchesTarget, selectModules } from './shape.js';

const PATH = 'bert.encoder.layer.0.attention.self.query'; // 41 characters, as in the report

describe('target_modules regex (untrusted)', () => {
  it('D1: a nested-quantifier pattern that would backtrack exponentially answers (no match) on a real path', () => {
    // With a backtracking engine this call never returns (time doubles per path character).
    expect(matchesTarget(PATH, '(.*)*X')).toBe(false);
    expect(matchesTarget(`${PATH}X`, '(.*)*X')).toBe(true);
    expect(matchesTarget(PATH, '(a|aa)+$|(\\w+\\.)*\\d\\d\\d\\d!')).toBe(false);
  });

  it('D1: selecting modules of a 12-layer model with such a pattern finishes and selects nothing', () => {
    expect(selectModules(presetShape('bert-base'), '(.*)*(.*)*(.*)*Z')).toEqual([]);
  });

  it('still has PEFT full-match semantics for ordinary patterns', () => {
    expect(matchesTarget(PATH, '.*\\.(query|value)')).toBe(true);
    expect(matchesTarget(PATH, 'query')).toBe(false); // full match, not search
    expect(matchesTarget(PATH, '.*layer\\.[0-3]\\..*query')).toBe(true);
    expect(selectModules(presetShape('bert-base'), '.*\\.(query|value)')).toHaveLength(24);
  });

  it('D4: a 100,000-character pattern is a ConfigError on target_modules, not an untyped SyntaxError', () => {
    const huge = '('.repeat(50_000) + ')'.repeat(49_999);
    for (const target of [huge, 'a'.repeat(100_000)]) {
      let err: unknown;
      try {
        matchesTarget(PATH, target);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).details.field).toBe('target_modules');
      // The message quotes a bounded prefix of the pattern, never all of it.
      expect((err as ConfigError).message.length).toBeLessThan(1_000);
    }
  });

  it('D4: a deeply nested but short valid pattern does not overflow the stack', () => {
    const nested = `${'(?:'.repeat(1_000)}.*${')'.repeat(1_000)}`;
    expect(() => matchesTarget(PATH, nested)).not.toThrow(RangeError);
    let ok: unknown;
    try {
      ok = matchesTarget(PATH, nested);
    } catch (e) {
      ok = e;
    }
    expect(ok === true || ok instanceof ConfigError).toBe(true);
  });

  it('rejects backtracking-only features (look-around, back-references) with a ConfigError', () => {
    for (const target of ['(?=q).*', '(q)\\1', '.*(?<!x)query']) {
      expect(() => matchesTarget(PATH, target)).toThrow(ConfigError);
    }
  });

  it('a target_modules that is neither a string nor a list of strings is a ConfigError (found by the torch-checkpoint fuzz target)', () => {
    for (const target of [7, { q: 1 }, null, ['query', 3]]) {
      expect(() => matchesTarget(PATH, target as unknown as string[])).toThrow(ConfigError);
    }
  });
});
