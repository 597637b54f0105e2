"""``python -m simulators.bluez --bus ADDRESS``: the BlueZ double as a process (demo, chaos, manual)."""

from simulators.bluez.runner import main

raise SystemExit(main())
