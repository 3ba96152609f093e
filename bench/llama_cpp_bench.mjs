// llama.cpp (the prebuilt CPU binary of npm's node-llama-cpp) on a GGUF file
// from bench/gguf_convert: load, prefill of a PROMPT-token prompt, greedy
// decoding of DECODE tokens, one sequence. Prints one JSON line, the fields
// of bench/generation_bench's where they mean the same.
//
//   node bench/llama_cpp_bench.mjs --model FILE.gguf [--threads 2] [--prompt 256] [--decode 64]
// (run from a folder where `npm install node-llama-cpp` put node_modules;
// bench/run.sh does that in a scratch folder.)
import {getLlama} from "node-llama-cpp";
import {performance} from "node:perf_hooks";
import {readFileSync} from "node:fs";
import {parseArgs} from "node:util";

const {values} = parseArgs({options: {
  model: {type: "string"}, threads: {type: "string", default: "2"},
  prompt: {type: "string", default: "256"}, decode: {type: "string", default: "64"},
  repeats: {type: "string", default: "3"},
}});
const threads = Number(values.threads), promptLen = Number(values.prompt), decode = Number(values.decode);

const llama = await getLlama({gpu: false, build: "never", maxThreads: threads, logLevel: "error"});
const t0 = performance.now();
const model = await llama.loadModel({modelPath: values.model, useMmap: true});
const loadMs = performance.now() - t0;
const text = readFileSync("/usr/share/games/fortunes/literature", "utf8");
const prompt = model.tokenize(text).slice(0, promptLen);
if (prompt.length < promptLen) throw new Error("prompt text too short");

let best = {prefill: Infinity, decode: 0};
for (let r = 0; r < Number(values.repeats); ++r) {
  const context = await model.createContext({contextSize: 1024, batchSize: 512, threads, sequences: 1});
  const sequence = context.getSequence();
  const start = performance.now();
  const it = sequence.evaluate(prompt, {temperature: 0});
  await it.next();  // the prompt, then the first token
  const first = performance.now();
  for (let i = 1; i < decode; ++i) await it.next();
  const end = performance.now();
  await it.return();
  best.prefill = Math.min(best.prefill, first - start);
  best.decode = Math.max(best.decode, (decode - 1) / ((end - first) / 1000));
  await context.dispose();
}
const rssMb = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify({implementation: "llama.cpp (node-llama-cpp)", model: values.model, threads,
  prompt_tokens: promptLen, load_ms: loadMs, prefill_ms: best.prefill, decode_tok_s_n1: best.decode, peak_rss_mb: rssMb}));
process.exit(0);
