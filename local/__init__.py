"""Run the SAM application locally: each function under the Lambda Runtime Interface Emulator,
an API-Gateway-like front door with API-key enforcement, events and their replay."""
