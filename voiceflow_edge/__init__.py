"""The HTTP edge both servers share (the inference pod and the control API): uvicorn settings,
header and idle deadlines, token redaction in logs, and the refusal to listen on a network address
with weak secrets. Its own package so the engine (`voiceflow`) never imports a web framework."""
