import { runBranchDtypeBench } from '../src/bench-branch-dtype.js';
const sizes = (process.argv[2] ?? 'tiny').split(',') as Array<'tiny' | 'base'>;
const fuse = process.argv[3] === undefined ? undefined : process.argv[3] === 'true';
const rows = await runBranchDtypeBench({ sizes, ...(fuse === undefined ? {} : { fuseSiblings: fuse }), log: (l) => console.log(new Date().toISOString().slice(11, 19), l) });
console.log(JSON.stringify(rows, null, 1));
