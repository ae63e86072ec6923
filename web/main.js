// The demo page: loads the wasm module (web/pkg, built by web/build.sh), opens the GPU,
// trains with a live curve, predicts a drawn or typed row, offers the model file.
// `document.body.dataset.state` says where the page is (ready, training, trained, error) and
// `dataset.accuracy` the last held-out accuracy, for the smoke test (.ci/web-demo-smoke.py).
// The search reports each grid point's mean cross-validated accuracy and the refitted
// winner's held-out accuracy.
import init, { open } from "./pkg/wgpu_mlp_web.js";

const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text; };
const setState = (state) => { document.body.dataset.state = state; };

// ---------------------------------------------------------------- the loss curve
const curve = { train: [], held: [], accuracy: [] };

function drawCurve(epochs) {
  const canvas = $("curve");
  const g = canvas.getContext("2d");
  const [w, h, pad] = [canvas.width, canvas.height, 32];
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#999";
  g.strokeRect(pad, 8, w - pad - 8, h - pad - 8);
  g.fillStyle = "#444";
  g.font = "12px system-ui";
  g.fillText("epoch", w - 48, h - 10);
  const top = Math.max(1e-9, ...curve.train, ...curve.held.filter(Number.isFinite));
  const x = (i) => pad + ((i + 1) / Math.max(1, epochs)) * (w - pad - 8);
  const yLoss = (v) => 8 + (1 - v / top) * (h - pad - 16);
  const yAcc = (v) => 8 + (1 - v) * (h - pad - 16);
  const line = (values, y, colour) => {
    g.strokeStyle = colour;
    g.beginPath();
    values.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
    g.stroke();
  };
  line(curve.train, yLoss, "#c33");
  line(curve.held, yLoss, "#36c");
  line(curve.accuracy, yAcc, "#2a6");
  g.fillStyle = "#c33"; g.fillText("training loss", pad, h - 10);
  g.fillStyle = "#36c"; g.fillText("held-out loss", pad + 92, h - 10);
  g.fillStyle = "#2a6"; g.fillText("held-out accuracy (0–1)", pad + 184, h - 10);
}

// ---------------------------------------------------------------- the 8×8 drawing grid
const cells = new Float32Array(64);

function drawGrid() {
  const g = $("grid").getContext("2d");
  for (let i = 0; i < 64; i++) {
    const v = 255 - Math.round((cells[i] / 16) * 255);
    g.fillStyle = `rgb(${v},${v},${v})`;
    g.fillRect((i % 8) * 20, Math.floor(i / 8) * 20, 20, 20);
  }
  $("values").value = Array.from(cells).join(",");
}

function paint(event) {
  if (!event.buttons) return;
  const box = $("grid").getBoundingClientRect();
  const col = Math.floor(((event.clientX - box.left) / box.width) * 8);
  const row = Math.floor(((event.clientY - box.top) / box.height) * 8);
  if (col < 0 || col > 7 || row < 0 || row > 7) return;
  cells[row * 8 + col] = event.buttons === 2 ? 0 : 16;
  drawGrid();
}

// ---------------------------------------------------------------- the session
let demo;

async function train() {
  const epochs = Number($("epochs").value);
  curve.train = []; curve.held = []; curve.accuracy = [];
  setState("training");
  $("train").disabled = true;
  const started = performance.now();
  try {
    const accuracy = await demo.train(Number($("hidden").value), Number($("lr").value), epochs,
      (epoch, trainLoss, heldLoss, heldAccuracy) => {
        curve.train.push(trainLoss); curve.held.push(heldLoss); curve.accuracy.push(heldAccuracy);
        drawCurve(epochs);
        status(`epoch ${epoch}/${epochs}: training loss ${trainLoss.toFixed(4)}, held-out accuracy ${(100 * heldAccuracy).toFixed(1)}%`);
      });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    status(`trained in ${seconds} s: ${(100 * accuracy).toFixed(2)}% of the held-out fifth right`);
    document.body.dataset.accuracy = String(accuracy);
    setState("trained");
    $("predict").disabled = false;
    $("download").disabled = false;
  } catch (e) {
    status(`training failed: ${e.message ?? e}`);
    setState("error");
  }
  $("train").disabled = false;
}

async function search() {
  const list = (id) => $(id).value.split(",").map(Number).filter((v) => v > 0);
  const [lrs, hiddens, epochs] = [list("lrs"), list("hiddens").map(Math.round), Number($("search-epochs").value)];
  const models = lrs.length * hiddens.length * 5;
  setState("searching");
  $("search").disabled = true;
  $("train").disabled = true;
  $("report").textContent = "";
  const started = performance.now();
  let epochsDone = 0;
  try {
    const report = await demo.search(new Float32Array(lrs), new Uint32Array(hiddens), epochs,
      (point, fold, epoch) => {
        epochsDone += 1;
        status(`${models} models + the refit, ${epochsDone} epochs done (point ${point + 1}, ${fold < 0 ? "refit" : "fold " + (fold + 1)}, epoch ${epoch})`);
      });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    $("report").textContent = report;
    status(`searched ${models} models and refitted the best in ${seconds} s`);
    setState("searched");
    $("predict").disabled = false;
    $("download").disabled = false;
  } catch (e) {
    status(`search failed: ${e.message ?? e}`);
    setState("error");
  }
  $("search").disabled = false;
  $("train").disabled = false;
}

async function predict() {
  const values = $("values").value.split(",").map(Number);
  try {
    const p = await demo.predict(values);
    const best = p.indexOf(Math.max(...p));
    document.body.dataset.prediction = Array.from(p).join(",");
    $("proba").innerHTML = Array.from(p, (v, i) =>
      `<div>${i === best ? "<b>" : ""}${i}: ${(100 * v).toFixed(1).padStart(5)}% <span style="width:${(100 * v).toFixed(0)}px"></span>${i === best ? "</b>" : ""}</div>`).join("");
  } catch (e) {
    status(`prediction failed: ${e.message ?? e}`);
  }
}

async function download() {
  const bytes = await demo.model_bytes();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  link.download = "model.safetensors";
  link.click();
  status("model.safetensors: use it with `wgpu-mlp predict model.safetensors rows.csv`");
}

async function loadModel(file) {
  try {
    status(demo.load_model(new Uint8Array(await file.arrayBuffer()), file.name));
    setState("model-loaded");
    $("predict").disabled = false;
    $("download").disabled = false;
  } catch (e) {
    status(`could not load ${file.name}: ${e.message ?? e}`);
    setState("error");
  }
}

async function loadFile(file) {
  try {
    $("summary").textContent = demo.load_csv(new Uint8Array(await file.arrayBuffer()), file.name);
    $("predict").disabled = true;
    $("download").disabled = true;
  } catch (e) {
    $("summary").textContent = `could not read ${file.name}: ${e.message ?? e}`;
  }
}

async function main() {
  try {
    await init();
    demo = await open();
  } catch (e) {
    status(`this browser offers no WebGPU here: ${e.message ?? e}`);
    setState("error");
    return;
  }
  $("summary").textContent = demo.load_digits();
  status(`GPU: ${demo.adapter()}. Press train.`);
  $("train").onclick = train;
  $("predict").onclick = predict;
  $("search").onclick = search;
  $("download").onclick = download;
  $("digits").onclick = () => { $("summary").textContent = demo.load_digits(); };
  $("csv").onchange = (e) => e.target.files[0] && loadFile(e.target.files[0]);
  $("model-file").onchange = (e) => e.target.files[0] && loadModel(e.target.files[0]);
  $("clear").onclick = () => { cells.fill(0); drawGrid(); };
  $("values").oninput = () => {
    const typed = $("values").value.split(",").map(Number);
    if (typed.length === 64 && typed.every(Number.isFinite)) {
      cells.set(typed);
      drawGrid();
    }
  };
  $("grid").onpointerdown = paint;
  $("grid").onpointermove = paint;
  $("grid").oncontextmenu = (e) => e.preventDefault();
  drawGrid();
  drawCurve(Number($("epochs").value));
  setState("ready");
}

main();
