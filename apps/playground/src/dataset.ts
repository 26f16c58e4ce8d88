/**
 * The Train panel's bundled dataset: short English sentences labelled with the embedded models'
 * six emotion labels (dair-ai/emotion's order). Written for this playground (no download, no
 * licence question): each label has its own cue words, put into shared sentence frames, so a
 * classifier can only tell the labels apart by the cue word. 6 labels × 8 cues × 6 frames = 288
 * rows, in a fixed interleaved order (every run and every test sees the same data).
 */

/** Cue words per label, in the label order of the embedded models' config.json. */
const CUES: ReadonlyArray<readonly [label: string, cues: readonly string[]]> = [
  ['sadness', ['sad', 'lonely', 'gloomy', 'heartbroken', 'miserable', 'down', 'hopeless', 'unhappy']],
  ['joy', ['happy', 'cheerful', 'glad', 'delighted', 'joyful', 'thrilled', 'content', 'pleased']],
  ['love', ['loving', 'tender', 'affectionate', 'devoted', 'fond', 'caring', 'romantic', 'adoring']],
  ['anger', ['angry', 'furious', 'irritated', 'annoyed', 'outraged', 'bitter', 'hostile', 'mad']],
  ['fear', ['scared', 'afraid', 'nervous', 'terrified', 'anxious', 'frightened', 'worried', 'tense']],
  ['surprise', ['amazed', 'astonished', 'shocked', 'stunned', 'startled', 'surprised', 'speechless', 'awed']],
];

const FRAMES: readonly string[] = ['i feel {} today', 'i am so {}', 'this makes me {}', 'feeling {} right now', 'we were {} all day', 'she looked {} again'];

export interface LabelledText {
  text: string;
  label: string;
}

/** The labels the bundled set uses (the embedded models' id2label, in order). */
export const BUNDLED_LABELS: readonly string[] = CUES.map(([l]) => l);

/** All 288 rows, interleaved: frame, then cue, then label (neighbouring rows have different labels). */
export function bundledDataset(): LabelledText[] {
  const out: LabelledText[] = [];
  for (const frame of FRAMES) {
    for (let c = 0; c < 8; c++) for (const [label, cues] of CUES) out.push({ text: frame.replace('{}', cues[c]!), label });
  }
  return out;
}

/** The first `n` rows as JSONL (what the Train panel's text box shows when the bundled set is picked). */
export function bundledJsonl(n = 288): string {
  return bundledDataset()
    .slice(0, n)
    .map((r) => JSON.stringify(r))
    .join('\n');
}
