"""What the status message says about each device, shared between the collector and the publisher."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from gateway import wire


class DeviceBoard:
    """Last contact / last error per device, read by the status publisher from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices: dict[str, dict[str, Any]] = {}

    def _entry(self, device_id: str) -> dict[str, Any]:
        return self._devices.setdefault(device_id, {"last_contact": None, "last_error": None})

    def contact(self, device_id: str) -> None:
        with self._lock:
            entry = self._entry(device_id)
            entry["last_contact"] = wire.iso_utc(datetime.now(UTC))
            entry["last_error"] = None

    def error(self, device_id: str, error: str) -> None:
        with self._lock:
            self._entry(device_id)["last_error"] = error

    def sequence_reset(self, device_id: str, reset: dict[str, Any]) -> None:
        """Kept in the status (``sequence_reset``) until the next reset replaces it."""
        with self._lock:
            self._entry(device_id)["sequence_reset"] = reset

    def quirks(self, device_id: str, names: tuple[str, ...]) -> None:
        with self._lock:
            self._entry(device_id)["quirks"] = list(names)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._devices.items()}
