// logit-bits.ts — for each model folder given, a digest of the float32 logits of a fixed run of forwards
// (prompt chunks of several sizes, then a tree under a mask, whose rows attend to slots that are not
// consecutive): one line "FOLDER DIGEST" each. Run under different ET_CPU_ISA values to compare their bits.
import { createHash } from "node:crypto";
import { loadModel } from "../../src/model/loader.ts";
import { forward, KvCache, StepOutput } from "../../src/native/engine.ts";

const CHUNKS = [1, 5, 2, 3, 17, 1, 4, 33, 7, 1, 61];
const TREE_PARENTS = [-1, 0, 0, 1, 1, 3, 2, 5];

for (const dir of process.argv.slice(2)) {
  const m = loadModel(dir, { device: "cpu", dtype: "f32" });
  const vocab = m.config.vocabSize;
  const ids = (n: number, salt: number) => Int32Array.from({ length: n }, (_, i) => 1 + ((i * 7919 + salt) % (vocab - 1)));
  const kv = KvCache.create(m.model, 256);
  const out = StepOutput.create();
  const digest = createHash("sha1");
  const take = (rows: number) => {
    for (let r = 0; r < rows; r++) digest.update(new Uint8Array(out.logitsRow(r, new Float32Array(vocab)).buffer));
  };
  let len = 0;
  for (const n of CHUNKS) {
    forward(m.model, kv, { tokens: ids(n, len), positions: Int32Array.from({ length: n }, (_, i) => len + i) }, out);
    take(n);
    len += n;
  }
  const n = TREE_PARENTS.length;
  const depth = TREE_PARENTS.map(() => 0);
  const mask = new Uint8Array(n * n);
  TREE_PARENTS.forEach((p, i) => {
    depth[i] = p < 0 ? 0 : depth[p] + 1;
    if (p >= 0) mask.set(mask.subarray(p * n, p * n + n), i * n);
    mask[i * n + i] = 1;
  });
  forward(m.model, kv, { tokens: ids(n, 99), positions: Int32Array.from(depth, (d) => len + d), mask }, out);
  take(n);
  console.log(dir, digest.digest("hex"));
  out.dispose();
  kv.dispose();
  m.model.dispose();
}
