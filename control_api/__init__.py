"""The VoiceFlow Control API: model registry, batch diarization jobs, auth, rate limits, audit.

Layout (one job per module): `app` wires everything; `routes/` are thin HTTP shells; `security`,
`ratelimit`, `uploads`, `registry`, `k8s`, `jobs`, `queue` hold the logic; `db`, `models` and
`migrations/` the storage; `worker` and `runner` the background work; `engine` is the only door to
the core engine. See docs/control_api.md.
"""
