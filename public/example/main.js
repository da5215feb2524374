// Uses only the built package: createAligner() runs the model in a Web Worker.
import { createAligner } from "../../pkg/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// ?model=URL and ?backend=cpu|webgpu|auto override the defaults.
const modelUrl = params.get("model") ?? new URL("../models/multilingual-e5-small-align-q4_0.gguf", location.href).href;
const backend = params.get("backend") ?? "auto";

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

const mb = (n) => (n / 1e6).toFixed(1);

async function main() {
  const t0 = performance.now();
  const aligner = await createAligner(modelUrl, {
    backend,
    onProgress({ phase, loaded, total }) {
      if (total) $("progress").value = loaded / total;
      setStatus("loading", `${phase}: ${mb(loaded)}${total ? ` / ${mb(total)}` : ""} MB`);
    },
  });
  $("progress").value = 1;
  const b = aligner.backend;
  setStatus(
    "ready",
    `ready in ${((performance.now() - t0) / 1000).toFixed(1)} s — ${b.kind} (${b.device})${b.reason ? `: ${b.reason}` : ""}`,
  );

  async function run() {
    $("align").disabled = true;
    setStatus("aligning", "aligning…");
    try {
      const t = performance.now();
      const r = await aligner.align($("src").value, $("tgt").value);
      const lines = r.links.map(
        (l) => `${r.srcWords[l.src].text} ↔ ${r.tgtWords[l.tgt].text}  (${l.score.toFixed(2)})`,
      );
      lines.push("", `sentence cosine ${r.similarity.cosine?.toFixed(3)}, BERTScore F1 ${r.similarity.bertscore.f1.toFixed(3)}`);
      $("links").textContent = lines.join("\n");
      setStatus("done", `aligned in ${(performance.now() - t).toFixed(0)} ms on ${b.kind}`);
    } catch (e) {
      $("links").textContent = `${e.code ?? "error"}: ${e.message}`;
      setStatus("error", e.message);
    } finally {
      $("align").disabled = false;
    }
  }
  $("align").addEventListener("click", run);
  $("align").disabled = false;
  await run();
}

main().catch((e) => {
  setStatus("error", `${e.code ?? "error"}: ${e.message}`);
});
