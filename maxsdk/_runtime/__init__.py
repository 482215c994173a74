"""Private runtime: owns every thread, lock and socket of a client."""

import logging as _logging


class _PersistQueueImportNotes(_logging.Filter):
    """Drop the INFO notes persist-queue logs when it is imported.

    Its ``__init__`` logs "Async queues not available, may need to install aiofiles and
    aiosqlite" and "DBUtils may not be installed, install via 'pip install
    persist-queue[extra]'", and its pickle serializer "Selected pickle protocol": advice
    and choices about features maxsdk does not use (it stores JSON in SQLite), which would
    otherwise land in the logs of every application that logs at INFO. Installed here,
    before any runtime module imports persist-queue; every other record of those loggers
    passes.
    """

    _NOTES = ("Async queues not available", "DBUtils may not be installed", "Selected pickle protocol")

    def filter(self, record: _logging.LogRecord) -> bool:
        return not (record.levelno == _logging.INFO and str(record.msg).startswith(self._NOTES))


for _name in ("persistqueue", "persistqueue.serializers.pickle"):
    _logging.getLogger(_name).addFilter(_PersistQueueImportNotes())
