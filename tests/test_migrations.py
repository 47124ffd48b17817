"""The schema is kept by Alembic migrations, run at start-up: a new database gets the newest
schema; a database made before migrations existed is adopted and upgraded; restarts keep cases."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from complaintflow.engine.db import MIGRATIONS, SCHEMA_HEAD, make_engine

both = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def columns(engine, table):
    return {c["name"] for c in inspect(engine).get_columns(table)}


@both
def test_a_new_database_gets_the_newest_schema(db_url):
    engine = make_engine(db_url)
    assert {"claimed_by", "claimed_at", "deadline"} <= columns(engine, "human_tasks")
    assert "access_log" in inspect(engine).get_table_names()
    assert {"api_tokens", "idempotency_keys", "outbox"} <= set(inspect(engine).get_table_names())
    assert "key_id" in columns(engine, "events")
    assert {"assignee", "priority"} <= columns(engine, "human_tasks")
    assert "round" in columns(engine, "deadlines")
    with engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == SCHEMA_HEAD


@both
def test_a_database_from_before_migrations_is_adopted_and_upgraded_and_restarts_keep_cases(db_url, make_service, mini_dir):
    old = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with old.begin() as conn:      # the schema as `create_all` made it before migrations
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("drop table alembic_version"))
    assert "claimed_by" not in columns(old, "human_tasks")
    old.dispose()

    service = make_service()
    service.deploy([mini_dir])
    case = service.start("mini", {"subject": "x", "due_at": "2026-05-08T17:00:00+08:00"}, "li")
    assert "claimed_by" in columns(service.engine, "human_tasks")
    again = make_service()                                   # a restart changes nothing
    assert again.show(case.instance_id)["case_number"] == case.case_number


def test_the_head_a_start_compares_with_is_the_newest_migration():
    """A start on a current database compares alembic_version with db.SCHEMA_HEAD instead of
    loading Alembic: a new migration whose id is not written there would never be run."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


@both
def test_a_database_one_migration_behind_is_upgraded_at_start(db_url, make_service, mini_dir):
    old = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with old.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
    assert "department" not in columns(old, "instances")
    old.dispose()

    service = make_service()
    service.deploy([mini_dir])
    case = service.start("mini", {"subject": "x", "due_at": "2026-05-08T17:00:00+08:00"}, "li")
    assert "department" in columns(service.engine, "instances")
    with service.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == SCHEMA_HEAD
    assert make_service().show(case.instance_id)["case_number"] == case.case_number


@both
def test_a_database_at_0008_with_cases_is_upgraded_and_its_closed_cases_compacted(db_url, make_service, clock):
    """Schema 0009 (closed cases kept small): a store with a closed and an open case, taken
    back to 0008 (states unpacked, hashes as hex text, the inbox indexes whole), starts again:
    both cases still verify and read the same; `compact` packs the closed one; the open one
    goes on; the inbox indexes hold open tasks only."""
    from complaintflow.engine.compaction import compact_closed
    from conftest import PROCESSES, open_task
    intake = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000",
              "category": "product_quality", "content": "新买的电水壶漏水",
              "promised_resolution_at": "2026-05-08T17:00:00+08:00"}
    service = make_service()
    service.deploy([PROCESSES / "enterprise_customer.bpmn"])
    closed = service.start("enterprise_customer", intake, "li").instance_id
    service.complete_task(open_task(service, closed, "preliminary_check")["task_id"], "li",
                          {"outcome": "settled", "severity": "general", "on_spot_resolution": "当场更换"})
    service.complete_task(open_task(service, closed, "summary_archive")["task_id"], "li", {"summary": "已处理"})
    running = service.start("enterprise_customer", intake, "li").instance_id
    before = {iid: (service.history(iid), service.case_detail(iid)["data"]) for iid in (closed, running)}
    service.engine.dispose()

    old = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with old.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
    assert "packed" not in columns(old, "instance_states")
    with old.connect() as conn:
        assert conn.execute(text("select count(*) from instance_states where state = ''")).scalar() == 0
    old.dispose()

    service = make_service()                                  # upgraded at start
    assert "packed" in columns(service.engine, "instance_states")
    for name in ("ix_human_tasks_open_role_due", "ix_human_tasks_open_assignee_due"):
        (index,) = [i for i in inspect(service.engine).get_indexes("human_tasks") if i["name"] == name]
        where = index["dialect_options"].get(f"{service.engine.dialect.name}_where")
        assert where is not None and "open" in str(where)
    for iid in (closed, running):
        assert service.replay(iid).consistent is True
        assert (service.history(iid), service.case_detail(iid)["data"]) == before[iid]
    assert compact_closed(service) == {"compacted": 1, "closed": 1}
    assert service.replay(closed).consistent is True
    assert service.case_detail(closed)["data"] == before[closed][1]
    service.complete_task(open_task(service, running, "preliminary_check")["task_id"], "li",
                          {"outcome": "accepted", "severity": "general", "department": "品质部"})
    assert service.replay(running).consistent is True               # hex and byte hashes in one chain
    assert [t["task"] for t in service.inbox(roles={"department"}).tasks] == ["investigate"]
