"""`make demo`: the whole transfer, end to end, on this machine (Azurite + the ARM/ACR emulator)."""
