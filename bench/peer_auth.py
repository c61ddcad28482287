"""Peer for the authenticated-list benchmark: FastAPI on uvicorn verifying an
HS256 JWT (PyJWT), checking membership and listing projects from SQLite —
the same work Cadre's GET /orgs/{orgId}/projects does."""
import os
import sqlite3
import uuid
from datetime import datetime, timezone

import jwt
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse

SECRET = "bench-secret-bench-secret-bench-secret!!"
DB = os.environ.get("PEER_DB", "/tmp/cadre-peer-bench.db")

app = FastAPI()


def connect():
    conn = sqlite3.connect(DB, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


CONN = connect()


def setup():
    CONN.executescript(
        """
        CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT);
        CREATE TABLE IF NOT EXISTS memberships (org_id TEXT, user_id TEXT, role TEXT, PRIMARY KEY (org_id, user_id));
        CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, org_id TEXT, name TEXT, created_at TEXT);
        """
    )
    CONN.commit()


setup()


@app.post("/seed")
async def seed():
    user, org = str(uuid.uuid4()), str(uuid.uuid4())
    CONN.execute("INSERT INTO users VALUES (?, ?)", (user, f"{user}@example.com"))
    CONN.execute("INSERT INTO memberships VALUES (?, ?, 'owner')", (org, user))
    CONN.execute("INSERT INTO projects VALUES (?, ?, 'Inbox', ?)", (str(uuid.uuid4()), org, datetime.now(timezone.utc).isoformat()))
    CONN.commit()
    token = jwt.encode({"sub": user, "iss": "cadre", "aud": "cadre-api", "exp": 9999999999}, SECRET, algorithm="HS256")
    return {"org": org, "token": token}


@app.get("/api/v1/orgs/{org_id}/projects")
async def projects(org_id: str, authorization: str = Header(default="")):
    try:
        claims = jwt.decode(authorization.removeprefix("Bearer "), SECRET, algorithms=["HS256"], audience="cadre-api", issuer="cadre")
    except jwt.PyJWTError:
        raise HTTPException(401)
    user = claims["sub"]
    if CONN.execute("SELECT 1 FROM users WHERE id = ?", (user,)).fetchone() is None:
        raise HTTPException(401)
    if CONN.execute("SELECT role FROM memberships WHERE org_id = ? AND user_id = ?", (org_id, user)).fetchone() is None:
        raise HTTPException(404)
    rows = CONN.execute("SELECT id, name, created_at FROM projects WHERE org_id = ? ORDER BY created_at LIMIT 20", (org_id,)).fetchall()
    total = CONN.execute("SELECT COUNT(*) FROM projects WHERE org_id = ?", (org_id,)).fetchone()[0]
    return JSONResponse({"success": True, "data": [{"id": r[0], "name": r[1], "createdAt": r[2]} for r in rows],
                         "pagination": {"page": 1, "pageSize": 20, "totalItems": total}})
