"""The dev suite (issue 22): seeded, cached, stratified recordings of held-out voices through the
channels that break speaker counting, plus the 12 AMI excerpts in k-fold cross-validation.

Modules, one job each: `channels` (pure channel effects), `conversations` (turn-taking layouts),
`manifest` (the stratified list of recordings, no audio), `render` (audio + exact reference),
`cache` (on disk, keyed by parameters), `folds` (cross-validation), `stats` (bootstrap),
`features` (VAD and embeddings cached per model), `systems` (what is compared), `runner` (scores
them), `report` (tables), `command` (`voiceflow evaluate --suite dev`).
"""
