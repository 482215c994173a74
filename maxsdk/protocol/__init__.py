"""The sans-I/O protocol core: pure state machines with no threads, sockets or clocks.

Everything here takes the current time as an argument and reports deadlines
instead of sleeping, so it is unit-tested by advancing a fake clock.
"""
