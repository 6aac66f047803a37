"""The yardstick: a bare FastAPI endpoint on the same server that only parses the JSON and answers."""

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response

BODY = orjson.dumps({"success": {"code": 200, "message": "Received CallPower payload."}})

app = FastAPI()


@app.post("/api/v1/callpower/call")
async def bare(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(BODY, media_type="application/json")
