// VoiceFlow live page: microphone -> Protocol v1 binary pcm_f32le frames -> live speaker timeline.
"use strict";

const FRAME_SECONDS = 0.1; // send ~100 ms frames: small enough for latency, large enough for overhead
const COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"];

const $ = (id) => document.getElementById(id);
const state = { ws: null, ctx: null, stream: null, node: null, finals: new Map(), drafts: [],
                speakers: new Map(), results: 0, sentSamples: 0, rate: 48000, buffer: [], buffered: 0 };

function defaultUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/ws/stream`;
}

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.dataset.state = kind;
}

function colorOf(speaker) {
  if (!state.speakers.has(speaker)) state.speakers.set(speaker, COLORS[state.speakers.size % COLORS.length]);
  $("speaker-count").textContent = String(state.speakers.size);
  return state.speakers.get(speaker);
}

function applySegments(segments) {
  const drafts = [];
  for (const s of segments) {
    if (s.final) state.finals.set(`${s.start.toFixed(3)}:${s.speaker}`, s);
    else drafts.push(s);
  }
  // Drafts are the engine's current guess for the open region: the newest set replaces the old one.
  if (segments.length) state.drafts = drafts;
  render();
}

function allSegments() {
  const finals = [...state.finals.values()];
  const lastFinal = finals.reduce((m, s) => Math.max(m, s.end), 0);
  const drafts = state.drafts.filter((s) => s.end > lastFinal);
  return finals.concat(drafts).sort((a, b) => a.start - b.start);
}

function render() {
  const segs = allSegments();
  const list = $("segments");
  list.replaceChildren(...segs.map((s) => {
    const li = document.createElement("li");
    li.className = "segment" + (s.final ? "" : " draft");
    li.dataset.speaker = s.speaker;
    li.dataset.start = String(s.start);
    li.dataset.end = String(s.end);
    li.style.color = colorOf(s.speaker);
    li.textContent = `${s.start.toFixed(2)}–${s.end.toFixed(2)} s  ${s.speaker}${s.final ? "" : " (draft)"}`;
    return li;
  }));
  drawTimeline(segs);
}

function drawTimeline(segs) {
  const canvas = $("timeline");
  const g = canvas.getContext("2d");
  const now = state.sentSamples / state.rate;
  const span = Math.max(30, now);
  const lanes = Math.max(1, state.speakers.size);
  const laneH = (canvas.height - 20) / lanes;
  g.clearRect(0, 0, canvas.width, canvas.height);
  const names = [...state.speakers.keys()];
  for (const s of segs) {
    const lane = names.indexOf(s.speaker);
    g.globalAlpha = s.final ? 1 : 0.45;
    g.fillStyle = colorOf(s.speaker);
    const x = (s.start / span) * canvas.width;
    const w = Math.max(1, ((s.end - s.start) / span) * canvas.width);
    g.fillRect(x, lane * laneH + 2, w, laneH - 4);
  }
  g.globalAlpha = 1;
  g.fillStyle = "#333";
  g.fillRect((now / span) * canvas.width, 0, 1, canvas.height - 20);
  g.fillText(`${now.toFixed(1)} s`, 4, canvas.height - 6);
}

function onMessage(event) {
  const msg = JSON.parse(event.data);
  if (msg.type === "ready") {
    setStatus(`streaming · session ${msg.session_id.slice(0, 8)} · model ${msg.model_version}`, "streaming");
  } else if (msg.type === "result") {
    state.results += 1;
    $("result-count").textContent = String(state.results);
    $("latency").textContent = msg.latency_ms.toFixed(1);
    applySegments(msg.segments);
  } else if (msg.type === "final") {
    state.finals = new Map(msg.segments.map((s) => [`${s.start.toFixed(3)}:${s.speaker}`, s]));
    state.drafts = [];
    render();
    setStatus(`finished (${msg.reason || "end"}): ${msg.segments.length} segments`, "done");
  } else if (msg.type === "error") {
    setStatus(`error ${msg.code}: ${msg.message}`, "error");
  }
}

function sendFrame() {
  if (!state.buffered || !state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  const frame = new Float32Array(state.buffered);
  let offset = 0;
  for (const block of state.buffer) { frame.set(block, offset); offset += block.length; }
  state.buffer = [];
  state.buffered = 0;
  state.sentSamples += frame.length;
  $("sent-seconds").textContent = (state.sentSamples / state.rate).toFixed(1);
  state.ws.send(frame.buffer); // little-endian float32 on every browser platform in practice
}

function onAudio(block) {
  state.buffer.push(block);
  state.buffered += block.length;
  if (state.buffered >= state.rate * FRAME_SECONDS) sendFrame();
}

async function start() {
  $("start").disabled = true;
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
    state.ctx = new AudioContext();
    await state.ctx.resume();
    state.rate = state.ctx.sampleRate;
    const source = state.ctx.createMediaStreamSource(state.stream);
    await state.ctx.audioWorklet.addModule("/static/capture-worklet.js");
    state.node = new AudioWorkletNode(state.ctx, "capture-processor");
    state.node.port.onmessage = (e) => onAudio(e.data);
    source.connect(state.node);

    let url = $("url").value || defaultUrl();
    const token = $("token").value.trim();
    if (token) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
    state.ws = new WebSocket(url);
    state.ws.binaryType = "arraybuffer";
    state.ws.onopen = () => {
      state.ws.send(JSON.stringify({ type: "start", sample_rate: state.rate, encoding: "pcm_f32le",
                                     protocol_version: 1 }));
    };
    state.ws.onmessage = onMessage;
    state.ws.onclose = (e) => {
      if ($("status").dataset.state !== "error" && $("status").dataset.state !== "done") {
        setStatus(`connection closed (${e.code}${e.reason ? ": " + e.reason : ""})`, e.code === 1000 ? "done" : "error");
      }
      stopAudio();
    };
    $("stop").disabled = false;
    setStatus("connecting…", "connecting");
  } catch (err) {
    setStatus(`cannot start: ${err}`, "error");
    $("start").disabled = false;
  }
}

function stopAudio() {
  if (state.node) state.node.disconnect();
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  if (state.ctx) state.ctx.close();
  state.node = state.stream = state.ctx = null;
  $("start").disabled = false;
  $("stop").disabled = true;
}

function stop() {
  sendFrame();
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "end" }));
  stopAudio();
}

$("url").value = defaultUrl();
$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
const params = new URLSearchParams(location.search);
if (params.get("token")) $("token").value = params.get("token");
if (params.get("autostart") === "1") start();
