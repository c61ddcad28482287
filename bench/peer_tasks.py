"""Peer for the work-graph benchmark: FastAPI on uvicorn over SQLite doing
what Cadre's task endpoints do — create a task with a version snapshot,
add a dependency after a recursive cycle check, list a project's tasks with
filters and a total, and return the graph around a task (recursive closure
up and down, with the edges). It checks no token: that favours the peer."""
import json
import os
import sqlite3
import uuid
from datetime import datetime, timezone

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

DB = os.environ.get("PEER_DB", "/tmp/cadre-peer-tasks.db")
app = FastAPI()
CONN = sqlite3.connect(DB, check_same_thread=False)
CONN.execute("PRAGMA journal_mode=WAL")
CONN.execute("PRAGMA synchronous=FULL")
CONN.executescript(
    """
    CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, name TEXT);
    CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, project_id TEXT, title TEXT, description TEXT,
        status TEXT, priority INTEGER, version INTEGER, created_at TEXT);
    CREATE INDEX IF NOT EXISTS tasks_project ON tasks (project_id, status, created_at);
    CREATE TABLE IF NOT EXISTS task_versions (task_id TEXT, version INTEGER, snapshot TEXT, PRIMARY KEY (task_id, version));
    CREATE TABLE IF NOT EXISTS deps (id TEXT PRIMARY KEY, task_id TEXT, depends_on TEXT, UNIQUE (task_id, depends_on));
    CREATE INDEX IF NOT EXISTS deps_up ON deps (depends_on);
    """
)


def now():
    return datetime.now(timezone.utc).isoformat()


def row(r):
    return {"id": r[0], "projectId": r[1], "title": r[2], "description": r[3], "status": r[4], "priority": r[5], "version": r[6], "createdAt": r[7]}


@app.post("/seed")
async def seed():
    project = str(uuid.uuid4())
    CONN.execute("INSERT INTO projects VALUES (?, 'Bench')", (project,))
    CONN.commit()
    return {"project": project}


@app.post("/api/v1/projects/{project}/tasks", status_code=201)
async def create_task(project: str, request: Request):
    body = await request.json()
    if not (1 <= len(body.get("title", "").strip()) <= 500):
        raise HTTPException(422, "title")
    if CONN.execute("SELECT 1 FROM projects WHERE id = ?", (project,)).fetchone() is None:
        raise HTTPException(404)
    task = (str(uuid.uuid4()), project, body["title"], body.get("description", ""), body.get("status", "draft"), body.get("priority", 5), 1, now())
    with CONN:
        CONN.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", task)
        CONN.execute("INSERT INTO task_versions VALUES (?, 1, ?)", (task[0], json.dumps(row(task))))
    return {"success": True, "data": row(task)}


@app.post("/api/v1/tasks/{task}/dependencies", status_code=201)
async def add_dependency(task: str, request: Request):
    up = (await request.json())["dependsOn"]
    with CONN:
        if CONN.execute("SELECT COUNT(*) FROM tasks WHERE id IN (?, ?)", (task, up)).fetchone()[0] != 2:
            raise HTTPException(404)
        cycle = CONN.execute(
            """WITH RECURSIVE up(id) AS (SELECT depends_on FROM deps WHERE task_id = ?
                 UNION SELECT d.depends_on FROM deps d JOIN up ON d.task_id = up.id)
               SELECT 1 FROM up WHERE id = ? LIMIT 1""", (up, task)).fetchone()
        if cycle is not None or up == task:
            return JSONResponse({"success": False, "error": {"code": "CYCLE"}}, status_code=409)
        edge = str(uuid.uuid4())
        CONN.execute("INSERT INTO deps VALUES (?, ?, ?)", (edge, task, up))
    return {"success": True, "data": {"id": edge, "taskId": task, "dependsOn": up}}


@app.get("/api/v1/projects/{project}/tasks")
async def list_tasks(project: str, status: str | None = None, q: str | None = None, page: int = 1, pageSize: int = 20):
    where = "project_id = ? AND (? IS NULL OR status = ?) AND (? IS NULL OR LOWER(title) LIKE ? OR LOWER(description) LIKE ?)"
    pattern = f"%{q.lower()}%" if q else None
    args = (project, status, status, q, pattern, pattern)
    rows = CONN.execute(f"SELECT * FROM tasks WHERE {where} ORDER BY priority DESC, created_at, id LIMIT ? OFFSET ?",
                        args + (pageSize, (page - 1) * pageSize)).fetchall()
    total = CONN.execute(f"SELECT COUNT(*) FROM tasks WHERE {where}", args).fetchone()[0]
    return {"success": True, "data": [row(r) for r in rows], "pagination": {"page": page, "pageSize": pageSize, "totalItems": total}}


@app.get("/api/v1/tasks/{task}/dependencies")
async def graph(task: str):
    around = """WITH RECURSIVE up(id) AS (SELECT ? UNION SELECT d.depends_on FROM deps d JOIN up ON d.task_id = up.id),
                down(id) AS (SELECT ? UNION SELECT d.task_id FROM deps d JOIN down ON d.depends_on = down.id),
                around(id) AS (SELECT id FROM up UNION SELECT id FROM down)"""
    nodes = CONN.execute(around + " SELECT * FROM tasks WHERE id IN (SELECT id FROM around)", (task, task)).fetchall()
    if not nodes:
        raise HTTPException(404)
    edges = CONN.execute(around + " SELECT * FROM deps WHERE task_id IN (SELECT id FROM around) AND depends_on IN (SELECT id FROM around)",
                         (task, task)).fetchall()
    return {"success": True, "data": {"taskId": task, "nodes": [row(r) for r in nodes],
                                      "edges": [{"id": e[0], "taskId": e[1], "dependsOn": e[2]} for e in edges]}}
