"""Private runtime: owns every thread, lock and socket of a client."""
