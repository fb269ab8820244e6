"""Where artifacts run, seen from the workstation: this machine, an emulated CPU (QEMU user mode) or a device
over SSH. Used by `bench` (to measure) and by `export --check-on` (to compare answers); imports only the
device layer below it."""
