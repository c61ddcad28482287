"""LangGraph's side of the engine benchmark: the same 10-call tool loop
(an agent node with a fake chat model that asks for one tool call per turn
ten times, then answers; a tool node), checkpointed durably after every
step, on SQLite and on PostgreSQL.

Prints JSON lines: {"peer", "backend", "mode", "p50_ms", "p99_ms", "steps_per_sec"}.
Usage: python langgraph_steps.py SQLITE_PATH POSTGRES_URL SERIAL_RUNS CONCURRENT CONCURRENT_RUNS
"""
import asyncio
import json
import statistics
import sys
import time

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

CALLS = 10


@tool
def remember(key: str, value: str) -> str:
    """Store a fact."""
    return "ok"


def model():
    answers = [
        AIMessage(content="", tool_calls=[{"name": "remember", "args": {"key": f"k{i}", "value": "v"}, "id": f"call_{i}"}])
        for i in range(CALLS)
    ] + [AIMessage(content="done")]
    return FakeMessagesListChatModel(responses=answers)


def graph(checkpointer):
    def agent(state: MessagesState):
        # The position in the conversation picks the answer, as in cadre's
        # scripted model, so every run (and every thread) gets the same loop.
        turn = sum(1 for m in state["messages"] if m.type == "ai")
        fake = model()
        fake.i = turn
        return {"messages": [fake.invoke(state["messages"])]}

    def route(state: MessagesState):
        return "tools" if state["messages"][-1].tool_calls else END

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([remember]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["tools", END])
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=checkpointer)


def serial(app, runs, prefix):
    gaps = []
    steps = 0
    start = time.perf_counter()
    for r in range(runs):
        config = {"configurable": {"thread_id": f"{prefix}-{r}-{time.time_ns()}"}}
        last = time.perf_counter()
        for _ in app.stream({"messages": [("user", "Task: record ten facts")]}, config, stream_mode="updates"):
            now = time.perf_counter()
            gaps.append((now - last) * 1000)
            last = now
            steps += 1
    elapsed = time.perf_counter() - start
    gaps.sort()
    return gaps, steps / elapsed


async def concurrent(app, n, runs, prefix):
    steps = 0

    async def one(i):
        nonlocal steps
        config = {"configurable": {"thread_id": f"{prefix}-c{i}-{time.time_ns()}"}}
        async for _ in app.astream({"messages": [("user", "Task: record ten facts")]}, config, stream_mode="updates"):
            steps += 1

    start = time.perf_counter()
    for batch in range(runs):
        await asyncio.gather(*(one(batch * n + i) for i in range(n)))
    return steps / (time.perf_counter() - start)


def report(backend, mode, gaps, rate):
    at = lambda q: gaps[min(len(gaps) - 1, int(len(gaps) * q))] if gaps else 0
    print(json.dumps({"peer": "langgraph", "backend": backend, "mode": mode,
                      "p50_ms": at(0.5), "p99_ms": at(0.99), "steps_per_sec": rate}), flush=True)


async def main():
    sqlite_path, pg_url, serial_runs, n, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    with SqliteSaver.from_conn_string(sqlite_path) as saver:
        saver.setup()
        gaps, rate = serial(graph(saver), serial_runs, "s")
        report("sqlite", "serial", gaps, rate)
    async with AsyncSqliteSaver.from_conn_string(sqlite_path) as saver:
        await saver.setup()
        rate = await concurrent(graph(saver), n, runs, "s")
        report("sqlite", f"{n} concurrent", [], rate)

    if pg_url:
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg_pool import AsyncConnectionPool

        with PostgresSaver.from_conn_string(pg_url) as saver:
            saver.setup()
            gaps, rate = serial(graph(saver), serial_runs, "p")
            report("postgres", "serial", gaps, rate)
        async with AsyncConnectionPool(pg_url, max_size=16, kwargs={"autocommit": True, "prepare_threshold": 0}) as pool:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            rate = await concurrent(graph(saver), n, runs, "p")
            report("postgres", f"{n} concurrent", [], rate)


asyncio.run(main())
