import { it } from 'vitest';
import { adapterSeeds } from './seeds.js';
import { httpCampaign } from './http.js';
it('smoke', async () => {
  const s = adapterSeeds({ real: false })[0]!;
  const r = await httpCampaign({ config: s.config, safetensors: s.safetensors });
  for (const x of r) console.log(x.behaviour, x.ok, Math.round(x.ms), JSON.stringify(x.outcome).slice(0, 200));
}, 600_000);
