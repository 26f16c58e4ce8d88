/** Registers every built-in method. One line per method; adding a method touches nothing else. */
import { registerMethod } from './registry.js';
import { lora } from './lora/index.js';

registerMethod(lora);
