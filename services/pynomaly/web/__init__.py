"""The platform's HTTP face: one ASGI app (Starlette) on `pynomaly serve --http-listen`, served by uvicorn in the
gRPC server's process and event loop, over the same data plane, limits and error table. Today it serves the Open
Inference Protocol's REST binding (web/oip.py); the web console joins the same app later."""
