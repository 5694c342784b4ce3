"""Process helpers shared by the kill tests."""

from __future__ import annotations

from pathlib import Path


def group_alive(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are alive (zombies, which nobody may reap in a container, are dead)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive
