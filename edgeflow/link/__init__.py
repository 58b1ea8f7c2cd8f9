"""Device link: the frame protocol, model identity, the streaming host and (rv32) the emulator."""
