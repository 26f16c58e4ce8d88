/** Registers every built-in method. One line per method; adding a method touches nothing else. */
import { registerMethod } from './registry.js';
import { trac } from './trac/index.js';
import { lora } from './lora/index.js';
import { vera } from './vera/index.js';
import { loretta } from './loretta/index.js';
import { lorta } from './lorta/index.js';
import { tenslora } from './tenslora/index.js';

registerMethod(trac);
registerMethod(lora);
registerMethod(vera);
registerMethod(loretta);
registerMethod(lorta);
registerMethod(tenslora);
