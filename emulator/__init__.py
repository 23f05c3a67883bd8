"""Local ARM + ACR Transfer emulator for development, tests and the demo. Never deployed with the app."""
