// VoiceFlow live page: microphone -> Protocol v1 binary pcm_f32le frames -> live speaker timeline.
"use strict";

const FRAME_SECONDS = 0.1; // send ~100 ms frames: small enough for latency, large enough for overhead
const COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"];
// Close codes after which the same stream is worth re-opening: the connection dropped (1006), the
// server went away or restarts (1001, 1012: a pod rolled), failed (1011) or shed us (1013).
// Anything else (bad token, too fast, malformed audio) would only fail again.
const RECONNECT_CODES = new Set([1001, 1006, 1011, 1012, 1013]);
const RECONNECT_MAX_DELAY_S = 10;
const LEVEL_FLOOR_DB = -60;
const AXIS_H = 20; // pixels under the lanes for the time axis

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// The timeline shows the newest WINDOW seconds and scrolls; ?window=N changes it.
const WINDOW_SECONDS = Math.max(2, Number(params.get("window")) || 30);

// Everything one Start..Stop run owns. Start makes a new one, so a second run never draws over the
// first, and messages still arriving from an old run's socket are ignored (see `current`).
function newRun() {
  return {
    ws: null, connection: 0, offset: 0, stopped: false, attempts: 0, retryTimer: null,
    finals: new Map(), drafts: [], speakers: new Map(), results: 0,
    capturedSamples: 0, sentSamples: 0, buffer: [], buffered: 0, peak: 0,
  };
}

const audio = { ctx: null, stream: null, node: null, rate: 48000 };
let run = newRun();

function defaultUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/ws/stream`;
}

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.dataset.state = kind;
}

// Browsers expose getUserMedia only in a secure context: HTTPS, or http://localhost / 127.0.0.1.
function microphoneAvailable() {
  return Boolean(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

function explainMissingMicrophone() {
  const here = `${location.protocol}//${location.host}`;
  setStatus(
    `The microphone is not available at ${here}: browsers allow it only on pages served over HTTPS ` +
      `or from localhost. Open this page as https://… (e.g. behind a TLS ingress) or through ` +
      `http://localhost:${location.port || 80} (kubectl port-forward).`,
    "insecure",
  );
  $("start").disabled = true;
}

// --- speakers, segments, drawing -----------------------------------------------------------------

// A reconnected stream is a new server session: its SPEAKER_00 need not be the first one's, so
// its labels are kept apart (SPEAKER_00 · 2 is session 2's SPEAKER_00).
function label(speaker) {
  return run.connection > 1 ? `${speaker} · ${run.connection}` : speaker;
}

function colorOf(speaker) {
  if (!run.speakers.has(speaker)) run.speakers.set(speaker, COLORS[run.speakers.size % COLORS.length]);
  return run.speakers.get(speaker);
}

// The speakers on the timeline now (a draft's label the engine later dropped is not listed), in
// the order they first appeared, each with its lane colour.
function renderLegend(segs) {
  const present = new Set(segs.map((s) => s.speaker));
  const shown = [...run.speakers].filter(([speaker]) => present.has(speaker));
  $("legend").replaceChildren(...shown.map(([speaker, color]) => {
    const li = document.createElement("li");
    li.dataset.speaker = speaker;
    li.dataset.color = color;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = color;
    li.append(swatch, document.createTextNode(speaker));
    return li;
  }));
  $("speaker-count").textContent = String(shown.length);
}

// Server times are seconds of this connection's audio; the run's clock adds what came before it.
function place(s) {
  return { start: s.start + run.offset, end: s.end + run.offset, speaker: label(s.speaker), final: s.final };
}

function applySegments(segments) {
  const drafts = [];
  for (const raw of segments) {
    const s = place(raw);
    if (s.final) run.finals.set(`${s.start.toFixed(3)}:${s.speaker}`, s);
    else drafts.push(s);
  }
  // Drafts are the engine's current guess for the open region: the newest set replaces the old one.
  if (segments.length) run.drafts = drafts;
  render();
}

function allSegments() {
  const finals = [...run.finals.values()];
  const lastFinal = finals.reduce((m, s) => Math.max(m, s.end), run.offset);
  const drafts = run.drafts.filter((s) => s.end > lastFinal);
  return finals.concat(drafts).sort((a, b) => a.start - b.start);
}

function render() {
  const segs = allSegments();
  $("segments").replaceChildren(...segs.map((s) => {
    const li = document.createElement("li");
    li.className = "segment" + (s.final ? "" : " draft");
    li.dataset.speaker = s.speaker;
    li.dataset.start = String(s.start);
    li.dataset.end = String(s.end);
    li.style.color = colorOf(s.speaker);
    li.textContent = `${s.start.toFixed(2)}–${s.end.toFixed(2)} s  ${s.speaker}${s.final ? "" : " (draft)"}`;
    return li;
  }));
  renderLegend(segs);
  drawTimeline(segs);
}

// Tick spacing: the smallest of 1, 2, 5, 10, 15, 30, 60 s giving at most ~8 ticks in the window.
function tickStep(span) {
  return [1, 2, 5, 10, 15, 30, 60, 120, 300].find((step) => span / step <= 8) || 600;
}

function drawTimeline(segs) {
  const canvas = $("timeline");
  const g = canvas.getContext("2d");
  const now = run.capturedSamples / audio.rate;
  const viewEnd = Math.max(WINDOW_SECONDS, now);
  const viewStart = viewEnd - WINDOW_SECONDS;
  const x = (t) => ((t - viewStart) / WINDOW_SECONDS) * canvas.width;
  const names = [...run.speakers.keys()];
  const laneH = (canvas.height - AXIS_H) / Math.max(1, names.length);
  g.clearRect(0, 0, canvas.width, canvas.height);
  for (const s of segs) {
    if (s.end < viewStart) continue; // scrolled out of the window
    g.globalAlpha = s.final ? 1 : 0.45;
    g.fillStyle = colorOf(s.speaker);
    const left = x(Math.max(s.start, viewStart));
    g.fillRect(left, names.indexOf(s.speaker) * laneH + 2, Math.max(1, x(s.end) - left), laneH - 4);
  }
  g.globalAlpha = 1;
  // Time axis: a baseline, and a labelled tick every `step` seconds of the run's clock.
  const base = canvas.height - AXIS_H;
  g.fillStyle = "#667";
  g.fillRect(0, base, canvas.width, 1);
  g.font = "11px system-ui, sans-serif";
  const step = tickStep(WINDOW_SECONDS);
  const ticks = [];
  for (let t = Math.ceil(viewStart / step) * step; t <= viewEnd + 1e-9; t += step) {
    ticks.push(t);
    g.fillRect(x(t), base, 1, 5);
    g.fillText(`${t} s`, Math.min(x(t) + 2, canvas.width - 30), canvas.height - 4);
  }
  g.fillStyle = "#333";
  g.fillRect(x(now), 0, 1, base); // the playhead
  Object.assign(canvas.dataset, { viewStart: viewStart.toFixed(2), viewEnd: viewEnd.toFixed(2), ticks: ticks.join(",") });
}

function resetView() {
  $("segments").replaceChildren();
  renderLegend([]);
  for (const [id, text] of [["result-count", "0"], ["latency", "–"], ["sent-seconds", "0.0"]]) $(id).textContent = text;
  showLevel(LEVEL_FLOOR_DB);
  drawTimeline([]);
}

// --- input level ---------------------------------------------------------------------------------

function showLevel(db) {
  const meter = $("level");
  meter.value = Math.max(LEVEL_FLOOR_DB, db);
  meter.dataset.db = db.toFixed(1);
  $("level-text").textContent = db <= LEVEL_FLOOR_DB ? "silent" : `${db.toFixed(0)} dBFS`;
}

// --- the socket: one run may use several connections (reconnect after a drop) ----------------------

function onMessage(ws, event) {
  if (ws !== run.ws) return; // a message from an earlier run or connection
  const msg = JSON.parse(event.data);
  if (msg.type === "ready") {
    run.attempts = 0;
    const again = run.connection > 1 ? ` · reconnected (${run.connection - 1}×)` : "";
    setStatus(`streaming · session ${msg.session_id.slice(0, 8)} · model ${msg.model_version}${again}`, "streaming");
  } else if (msg.type === "result") {
    run.results += 1;
    $("result-count").textContent = String(run.results);
    $("latency").textContent = msg.latency_ms.toFixed(1);
    applySegments(msg.segments);
  } else if (msg.type === "final") {
    // This connection's whole result; earlier connections' finals stay as they were.
    for (const key of [...run.finals.keys()]) if (run.finals.get(key).start >= run.offset) run.finals.delete(key);
    applySegments(msg.segments.map((s) => ({ ...s, final: true })));
    run.drafts = [];
    render();
    if (run.stopped) setStatus(`finished (${msg.reason || "end"}): ${run.finals.size} segments`, "done");
  } else if (msg.type === "error") {
    setStatus(`error ${msg.code}: ${msg.message}`, "error");
  }
}

function onClose(ws, event) {
  if (ws !== run.ws) return;
  run.ws = null;
  if (!run.stopped && RECONNECT_CODES.has(event.code) && audio.node) {
    scheduleReconnect(event.code);
    return;
  }
  const kind = $("status").dataset.state;
  if (kind !== "error" && kind !== "done") {
    const reason = event.reason ? ": " + event.reason : "";
    setStatus(`connection closed (${event.code}${reason})`, event.code === 1000 ? "done" : "error");
  }
  stopAudio();
}

function scheduleReconnect(code) {
  run.attempts += 1;
  const delay = Math.min(RECONNECT_MAX_DELAY_S, 0.5 * 2 ** (run.attempts - 1));
  setStatus(`connection lost (${code}); reconnecting in ${delay.toFixed(1)} s (attempt ${run.attempts})`, "reconnecting");
  run.retryTimer = setTimeout(() => { run.retryTimer = null; connect(); }, delay * 1000);
}

function connect() {
  let url = $("url").value || defaultUrl();
  const token = $("token").value.trim();
  if (token) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  run.ws = ws;
  run.connection += 1;
  document.body.dataset.connections = String(run.connection);
  ws.onopen = () => {
    if (ws !== run.ws) return;
    // The new session's clock starts at 0 here: what was captured until now comes before it.
    run.buffer = [];
    run.buffered = 0;
    run.offset = run.capturedSamples / audio.rate;
    ws.send(JSON.stringify({ type: "start", sample_rate: audio.rate, encoding: "pcm_f32le", protocol_version: 1 }));
  };
  ws.onmessage = (event) => onMessage(ws, event);
  ws.onclose = (event) => onClose(ws, event);
}

function sendFrame() {
  const ws = run.ws;
  if (!run.buffered) return;
  const frame = new Float32Array(run.buffered);
  let offset = 0;
  for (const block of run.buffer) { frame.set(block, offset); offset += block.length; }
  run.buffer = [];
  run.buffered = 0;
  showLevel(run.peak > 0 ? 20 * Math.log10(run.peak) : -Infinity);
  run.peak = 0;
  drawTimeline(allSegments());
  if (!ws || ws.readyState !== WebSocket.OPEN) return; // between connections: this audio is lost
  run.sentSamples += frame.length;
  $("sent-seconds").textContent = (run.sentSamples / audio.rate).toFixed(1);
  ws.send(frame.buffer); // little-endian float32 on every browser platform in practice
}

function onAudio(block) {
  let sum = 0;
  for (let i = 0; i < block.length; i++) sum += block[i] * block[i];
  run.peak = Math.max(run.peak, Math.sqrt(sum / block.length)); // loudest 128-sample RMS of the frame
  run.capturedSamples += block.length;
  run.buffer.push(block);
  run.buffered += block.length;
  if (run.buffered >= audio.rate * FRAME_SECONDS) sendFrame();
}

// --- start / stop --------------------------------------------------------------------------------

async function start() {
  if (!microphoneAvailable()) return explainMissingMicrophone();
  $("start").disabled = true;
  run = newRun(); // a fresh timeline: nothing of the previous run is kept or drawn
  resetView();
  try {
    audio.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
    audio.ctx = new AudioContext();
    await audio.ctx.resume();
    audio.rate = audio.ctx.sampleRate;
    const source = audio.ctx.createMediaStreamSource(audio.stream);
    await audio.ctx.audioWorklet.addModule("/static/capture-worklet.js");
    audio.node = new AudioWorkletNode(audio.ctx, "capture-processor");
    audio.node.port.onmessage = (e) => onAudio(e.data);
    source.connect(audio.node);
    connect();
    $("stop").disabled = false;
    setStatus("connecting…", "connecting");
  } catch (err) {
    setStatus(`cannot start: ${err}`, "error");
    stopAudio();
  }
}

function stopAudio() {
  if (audio.node) audio.node.disconnect();
  if (audio.stream) audio.stream.getTracks().forEach((t) => t.stop());
  if (audio.ctx) audio.ctx.close();
  audio.node = audio.stream = audio.ctx = null;
  $("start").disabled = !microphoneAvailable();
  $("stop").disabled = true;
}

function stop() {
  run.stopped = true;
  if (run.retryTimer) clearTimeout(run.retryTimer);
  sendFrame();
  if (run.ws && run.ws.readyState === WebSocket.OPEN) {
    run.ws.send(JSON.stringify({ type: "end" }));
    setStatus("finishing…", "finishing");
  } else {
    setStatus("stopped", "done");
  }
  stopAudio();
}

$("url").value = defaultUrl();
$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
if (params.get("token")) $("token").value = params.get("token");
resetView();
if (!microphoneAvailable()) explainMissingMicrophone();
else if (params.get("autostart") === "1") start();
