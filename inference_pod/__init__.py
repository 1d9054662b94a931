"""The real-time serving pod (`voiceflow serve`): WebSocket streaming diarization (Protocol v1,
docs/protocol.md), `POST /infer`, health/readiness, Prometheus metrics, hot model reload.

Layout: `protocol` (pure parsing/validation and message builders), `settings`, `auth`, `metrics`,
`batching` (cross-session embedding batches), `model_manager` (load, warm, hot reload),
`engine` (the one seam to `voiceflow`), `pod` (process state and the worker pool), `stream`
(one WebSocket stream), `server` (routes), `serve` (uvicorn with a draining SIGTERM),
`client` + `cli` (`voiceflow stream`), `static/` (the live microphone page).
"""
