"""What the event log says the database should hold: the integration tests'
common reading of registrations and resets."""

from __future__ import annotations


def kept_programs(events) -> dict[int, dict]:
    """Program id -> its logged fields, minus the programs island resets removed."""
    kept: dict[int, dict] = {}
    for event in events:
        if event["kind"] == "registration":
            kept[event["program_id"]] = event
        elif event["kind"] == "reset":
            kept = {pid: e for pid, e in kept.items() if e["island"] != event["island"]}
            kept[event["founder"]["program_id"]] = event["founder"]
    return kept
