"""The gateway's typed error tree.

Every error the gateway raises on purpose is a :class:`GatewayError`.  Each concrete class is also
marked :class:`TerminalError` (retrying cannot help: dead-letter the item with its reason) or
:class:`TransientError` (the world is temporarily unavailable: retry with backoff).  Loops choose by
type (``isinstance(exc, TransientError)`` or :func:`is_transient`), never by message text.

::

    GatewayError
    ├── DecodeError                        bytes from a device we cannot accept (terminal)
    │   ├── MalformedMeasurement           (characteristic, reason, payload_hex)
    │   ├── ImpossibleValue                (field, value, bounds)   plausibility layer
    │   └── ContextMismatch                (measurement_sequence, context_sequence)
    ├── RacpError                          (request_opcode, response_code)   a RACP procedure failed
    │   ├── RacpRefused                    terminal: the meter will answer the same way again
    │   └── RacpIncomplete                 transient: abort unsuccessful / procedure not completed
    ├── UnknownDevice                      (device_id)   terminal
    ├── SettingsError                      (key, reason) terminal: bad configuration at start-up
    ├── StateDirUnusable                   (directory, reason, fix) terminal: outbox directory unusable
    ├── DeviceUnavailable                  (device_id, reason) transient: out of range, link lost
    │   └── PairingNeeded                  the device wants an encrypted, bonded link (pair it once)
    ├── BluetoothUnavailable               (detail) the host's Bluetooth stack, not one device
    │   ├── NoSystemBus                    terminal: no D-Bus system bus to talk to
    │   ├── BlueZNotRunning                terminal: nobody owns org.bluez on the bus
    │   ├── NoAdapter                      terminal: no Bluetooth LE adapter
    │   ├── BluetoothPermissionDenied      terminal: D-Bus policy / group refuses this user
    │   └── AdapterOff                     transient: powered off or blocked by rfkill
    ├── ProcedureTimeout                   (device_id, procedure, timeout_s) transient
    ├── BrokerUnavailable                  (reason) transient: MQTT broker down or refusing
    ├── MalformedAck                       (reason, payload_head) terminal: an ack not in rpmflow.ack.v1
    └── OutboxFull                         (capacity) transient: refuse new readings until drained

``TerminalError`` and ``TransientError`` are plain :class:`Exception` mixins (not ``BaseException``)
so ``except Exception`` still sees them.  Every constructor passes its fields on to
``Exception.__init__`` so the errors pickle and compare by ``args``.
"""

from __future__ import annotations

from gateway.runtime.settings import SettingError

__all__ = [
    "AdapterOff",
    "BlueZNotRunning",
    "BluetoothPermissionDenied",
    "BluetoothUnavailable",
    "BrokerUnavailable",
    "ContextMismatch",
    "DecodeError",
    "DeviceUnavailable",
    "GatewayError",
    "ImpossibleValue",
    "MalformedAck",
    "MalformedMeasurement",
    "NoAdapter",
    "NoSystemBus",
    "OutboxFull",
    "PairingNeeded",
    "ProcedureTimeout",
    "RacpError",
    "RacpIncomplete",
    "RacpRefused",
    "SettingsError",
    "StateDirUnusable",
    "TerminalError",
    "TransientError",
    "UnknownDevice",
    "is_transient",
]


class TerminalError(Exception):
    """Marker: retrying the same input cannot succeed; dead-letter it with its reason."""


class TransientError(Exception):
    """Marker: the failure depends on the outside world; retry later with backoff."""


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class DecodeError(GatewayError, TerminalError):
    """Bytes (or decoded values) that cannot become a reading."""


class MalformedMeasurement(DecodeError):
    """A characteristic value that does not follow its GATT layout (short, bad field, wrong op code)."""

    def __init__(self, characteristic: str, reason: str, payload_hex: str) -> None:
        super().__init__(characteristic, reason, payload_hex)
        self.characteristic = characteristic
        self.reason = reason
        self.payload_hex = payload_hex

    def __str__(self) -> str:
        return f"{self.characteristic}: {self.reason} (payload {self.payload_hex or '<empty>'})"


class ImpossibleValue(DecodeError):
    """A well-formed value that cannot be physiological or device-true (plausibility layer)."""

    def __init__(self, field: str, value: float, bounds: str) -> None:
        super().__init__(field, value, bounds)
        self.field = field
        self.value = value
        self.bounds = bounds

    def __str__(self) -> str:
        return f"{self.field}={self.value!r} violates {self.bounds}"


class ContextMismatch(DecodeError):
    """A glucose context was joined to a measurement with another sequence number."""

    def __init__(self, measurement_sequence: int, context_sequence: int) -> None:
        super().__init__(measurement_sequence, context_sequence)
        self.measurement_sequence = measurement_sequence
        self.context_sequence = context_sequence

    def __str__(self) -> str:
        return (
            f"context sequence number {self.context_sequence} does not match "
            f"measurement sequence number {self.measurement_sequence}"
        )


class RacpError(GatewayError):
    """The meter answered a RACP request with a response code other than success / no records."""

    def __init__(self, request_opcode: int, response_code: int) -> None:
        super().__init__(request_opcode, response_code)
        self.request_opcode = request_opcode
        self.response_code = response_code

    def __str__(self) -> str:
        return (
            f"RACP op code 0x{self.request_opcode:02X} failed with response code 0x{self.response_code:02X}"
        )


class RacpRefused(RacpError, TerminalError):
    """The meter refused the request itself (op code / operator / operand not supported or invalid)."""


class RacpIncomplete(RacpError, TransientError):
    """The procedure did not complete (0x07 abort unsuccessful, 0x08 procedure not completed)."""


class UnknownDevice(GatewayError, TerminalError):
    """A device id the gateway has no configuration (or quirk profile) for."""

    def __init__(self, device_id: str) -> None:
        super().__init__(device_id)
        self.device_id = device_id

    def __str__(self) -> str:
        return f"unknown device {self.device_id!r}"


class SettingsError(GatewayError, TerminalError, SettingError):
    """Configuration that cannot work; raised at start-up and naming the key. It is the shared
    runtime's :class:`~gateway.runtime.settings.SettingError` (one line, exit 2) with the key as
    given (backends and plug-ins name their own variables)."""

    def __init__(self, key: str, reason: str) -> None:
        SettingError.__init__(self, key, reason)
        self.args = (key, reason)


class DeviceUnavailable(GatewayError, TransientError):
    """The device could not be reached or dropped the link (out of range, not advertising, BlueZ abort)."""

    def __init__(self, device_id: str, reason: str) -> None:
        super().__init__(device_id, reason)
        self.device_id = device_id
        self.reason = reason

    def __str__(self) -> str:
        return f"device {self.device_id!r} unavailable: {self.reason}"


class PairingNeeded(DeviceUnavailable):
    """The device refused an operation until it is paired and bonded (AuthenticationFailed,
    NotPermitted, ATT insufficient authentication/encryption): retrying will not change that."""

    def __str__(self) -> str:
        return (f"device {self.device_id!r} needs pairing ({self.reason}): pair it once with bluetoothctl"
                " (docs/gateway.md, Pairing) and close the vendor app that may hold its bond")


class BluetoothUnavailable(GatewayError):
    """The host's Bluetooth stack cannot be used (not one device): the message names the fix."""

    fix: str = "check the Bluetooth stack"
    what: str = "Bluetooth unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.what} ({self.detail}): {self.fix}"


class NoSystemBus(BluetoothUnavailable, TerminalError):
    what = "no D-Bus system bus"
    fix = ("install and start D-Bus (apt-get install dbus; systemctl start dbus), or point"
           " DBUS_SYSTEM_BUS_ADDRESS at the system bus")


class BlueZNotRunning(BluetoothUnavailable, TerminalError):
    what = "BlueZ is not running on the D-Bus system bus"
    fix = "install and start it: apt-get install bluez; systemctl enable --now bluetooth"


class NoAdapter(BluetoothUnavailable, TerminalError):
    what = "no Bluetooth LE adapter"
    fix = ("plug in or enable the adapter and check that BlueZ lists it (bluetoothctl list);"
           " on a Raspberry Pi check dtoverlay=disable-bt is not set in config.txt")


class BluetoothPermissionDenied(BluetoothUnavailable, TerminalError):
    what = "not allowed to use Bluetooth over D-Bus"
    fix = ("add the service user to the bluetooth group (usermod -aG bluetooth rpmflow) and restart"
           " the service, or run it with the shipped systemd unit (SupplementaryGroups=bluetooth)")


class AdapterOff(BluetoothUnavailable, TransientError):
    what = "the Bluetooth adapter is off"
    fix = "turn it on: rfkill unblock bluetooth; bluetoothctl power on (retrying meanwhile)"


class StateDirUnusable(GatewayError, TerminalError):
    """The outbox's directory cannot be created or written by this user (one line with the fix)."""

    def __init__(self, directory: str, reason: str, fix: str) -> None:
        super().__init__(directory, reason, fix)
        self.directory = directory
        self.reason = reason
        self.fix = fix

    def __str__(self) -> str:
        return f"outbox directory {self.directory}: {self.reason}: {self.fix}"


class ProcedureTimeout(GatewayError, TransientError):
    """A GATT procedure (RACP download, context wait, read) ran past its deadline."""

    def __init__(self, device_id: str, procedure: str, timeout_s: float) -> None:
        super().__init__(device_id, procedure, timeout_s)
        self.device_id = device_id
        self.procedure = procedure
        self.timeout_s = timeout_s

    def __str__(self) -> str:
        return f"device {self.device_id!r}: {self.procedure} timed out after {self.timeout_s:g} s"


class BrokerUnavailable(GatewayError, TransientError):
    """The MQTT broker is down, unreachable or refused the connection for now."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"broker unavailable: {self.reason}"


class MalformedAck(GatewayError, TerminalError):
    """An acknowledgement that does not follow ``rpmflow.ack.v1`` (terminal: the same bytes stay bad)."""

    def __init__(self, reason: str, payload_head: str) -> None:
        super().__init__(reason, payload_head)
        self.reason = reason
        self.payload_head = payload_head

    def __str__(self) -> str:
        return f"malformed ack: {self.reason} (payload {self.payload_head!r})"


class OutboxFull(GatewayError, TransientError):
    """The on-disk outbox reached its bound; new readings are refused until it drains."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.capacity = capacity

    def __str__(self) -> str:
        return f"outbox full ({self.capacity} readings)"


def is_transient(exc: BaseException) -> bool:
    """True when retrying may help (the class is marked :class:`TransientError`)."""
    return isinstance(exc, TransientError)
