"""Vehicles and reference documents (permits, delivery orders, plans) in PostgreSQL.

Documents are versioned like fences: saving a changed document inserts version n+1, so an auditor can see
which permit was in force when an alert fired. Saving an identical document is a no-op.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
import psycopg

from tracker.reference import DeliveryOrder, Permit, Vehicle

T = TypeVar("T", bound=msgspec.Struct)

DOC_TYPES: dict[str, type[msgspec.Struct]] = {"permit": Permit, "order": DeliveryOrder}


def save_vehicles(conn: psycopg.Connection, vehicles: list[Vehicle]) -> int:
    rows = [
        (v.id, v.kind, v.company, v.district, v.plate, v.phone, v.vendor_profile,
         msgspec.json.encode({"sensors": list(v.sensors)}).decode())
        for v in vehicles
    ]
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO vehicles (vehicle_id, kind, company, district, plate, phone, vendor_profile, attrs)
               VALUES (%s,%s,%s,%s,%s,%s,%s,%s::jsonb)
               ON CONFLICT (vehicle_id) DO UPDATE SET kind = EXCLUDED.kind, company = EXCLUDED.company,
                 district = EXCLUDED.district, plate = EXCLUDED.plate, phone = EXCLUDED.phone,
                 vendor_profile = EXCLUDED.vendor_profile, attrs = EXCLUDED.attrs""",
            rows,
        )
    return len(rows)


def load_vehicles(conn: psycopg.Connection) -> list[Vehicle]:
    rows = conn.execute(
        "SELECT vehicle_id, kind, company, district, plate, phone, vendor_profile, attrs FROM vehicles "
        "ORDER BY vehicle_id"
    ).fetchall()
    return [
        Vehicle(id=r[0], kind=r[1], company=r[2] or "", district=r[3], plate=r[4], phone=r[5],
                vendor_profile=r[6], sensors=tuple((r[7] or {}).get("sensors", ())))
        for r in rows
    ]


def save_docs(conn: psycopg.Connection, doc_type: str, docs: list[msgspec.Struct], actor: str | None = None
              ) -> int:
    """Insert a new version of each changed document; returns how many versions were written."""
    written = 0
    for doc in docs:
        body = msgspec.to_builtins(doc)
        doc_id = body["id"]
        last = conn.execute(
            "SELECT version, body FROM reference_docs WHERE doc_type=%s AND doc_id=%s "
            "ORDER BY version DESC LIMIT 1",
            (doc_type, doc_id),
        ).fetchone()
        if last is not None and last[1] == body:
            continue
        version = 1 if last is None else last[0] + 1
        conn.execute(
            "INSERT INTO reference_docs (doc_type, doc_id, version, body, valid_from, valid_to, created_by) "
            "VALUES (%s,%s,%s,%s::jsonb,%s,%s,%s)",
            (doc_type, doc_id, version, msgspec.json.encode(body).decode(), body.get("valid_from"),
             body.get("valid_to"), actor),
        )
        written += 1
    return written


def load_docs(conn: psycopg.Connection, doc_type: str, typ: type[T]) -> list[T]:
    """The latest version of every document of a type."""
    rows = conn.execute(
        "SELECT DISTINCT ON (doc_id) body, version FROM reference_docs WHERE doc_type=%s "
        "ORDER BY doc_id, version DESC",
        (doc_type,),
    ).fetchall()
    out = []
    for body, version in rows:
        if "version" in typ.__struct_fields__:
            body = {**body, "version": version}
        out.append(msgspec.convert(body, typ))
    return out
