"""The HTTP edge both servers share (the inference pod and the control API): uvicorn settings,
header and idle deadlines, token redaction in logs, the refusal to listen on a network address
with weak secrets, and reading their `VOICEFLOW_*` settings from the environment. Its own package
so the engine (`voiceflow`) never imports a web framework."""
