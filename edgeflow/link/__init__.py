"""Device link: the frame protocol, the session, the streaming harness and its checks, injected faults."""
