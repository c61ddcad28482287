"""Peer for the HTTP baseline: the same liveness answer from FastAPI on
uvicorn, the stack LangGraph Platform's and Dify's API servers are built on."""
import time
import uuid
from datetime import datetime, timezone

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
STARTED = time.monotonic()


@app.get("/api/v1/health")
async def health(request: Request):
    request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
    body = {
        "success": True,
        "data": {"status": "ok", "version": "peer", "uptimeSeconds": int(time.monotonic() - STARTED)},
        "meta": {"requestId": request_id, "timestamp": datetime.now(timezone.utc).isoformat()},
    }
    return JSONResponse(body, headers={"x-request-id": request_id})
