"""Streaming building blocks: small stages with one interface, composed per pipeline (diart-style).

A live session (`session.BlockSession`) steps every `voiceflow.STREAM_FEED_SAMPLES` of its own
stream whatever the chunks it is fed, keeps the recent audio (`audio.RollingAudio`) and runs its
blocks (`base.Block`) in order on each hop of the stream: every block reads what the earlier ones
wrote on the hop and adds its own part. The embedding pipelines compose
  speech (VAD, `speech.SpeechBlock`) -> embedding (`embedding.WindowEmbedding`)
  -> online clustering (`clustering.OnlineLabels`) [-> second speakers, the overlap detector's
  block in `voiceflow.segmentation.blocks`]
and aggregate the blocks' frame tracks into segments (`aggregation.FrameSegments`); the
segmentation pipeline composes the segmentation network's blocks (voiceflow.segmentation.blocks).
"""
