"""voiceflow_operator."""
