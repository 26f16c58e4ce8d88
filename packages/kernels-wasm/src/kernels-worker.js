// Worker thread of the wasm kernels (src/threads.ts). Plain JavaScript, so that Node can start it
// from the sources as well as from dist/, and browsers and bundlers load it as a module worker.
// It instantiates the threaded kernels (kernels-mt.wasm) on the memory it is given — shared with
// the main thread — and runs the op lists it is sent with `tp_run`.
let kernels;
let memory;

function handle(msg, reply) {
  // reply(message, transferList)
  if (msg.type === 'init') {
    try {
      memory = msg.memory;
      kernels = new WebAssembly.Instance(msg.module, { env: { memory } }).exports;
      reply({ type: 'ready' });
    } catch (e) {
      reply({ type: 'error', message: String((e && e.message) || e) });
    }
  } else if (msg.type === 'run') {
    // Run the lane, then copy its outputs out of the shared memory here (in parallel with the
    // main thread's own copying) and hand them over without another copy (transfer).
    let status;
    try {
      status = kernels.tp_run(msg.at, msg.len);
    } catch (e) {
      status = String((e && e.message) || e);
    }
    const outs = [];
    if (status === 0) {
      const all = new Float32Array(memory.buffer);
      for (const [at, len] of msg.outs) outs.push(all.slice(at / 4, at / 4 + len));
    }
    reply({ type: 'done', id: msg.id, status, outs }, outs.map((o) => o.buffer));
  }
}

if (typeof process !== 'undefined' && process.versions && process.versions.node && typeof self === 'undefined') {
  const { parentPort } = await import('node:worker_threads');
  parentPort.on('message', (m) => handle(m, (r, t) => parentPort.postMessage(r, t)));
} else {
  self.onmessage = (e) => handle(e.data, (r, t) => self.postMessage(r, t));
}
