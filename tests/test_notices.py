"""The notebooks' log filter (mh.repro.notices): exactly the known compile notices go, nothing else."""

import logging

from mh.repro.notices import KNOWN_COMPILE_NOTICES, quiet_known_compile_notices


def test_the_two_known_compile_notices_are_dropped_and_nothing_else(caplog):
    quiet_known_compile_notices()
    quiet_known_compile_notices()  # idempotent: one filter per notice
    with caplog.at_level(logging.WARNING):
        for logger_name, start, _why in KNOWN_COMPILE_NOTICES:
            logger = logging.getLogger(logger_name)
            assert len([f for f in logger.filters if hasattr(f, "known_notice")]) == 1
            logger.warning("%s %s will be ignored", start, "<something>")
            logger.warning("an unrelated warning from %s", logger_name)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [f"an unrelated warning from {name}" for name, _start, _why in KNOWN_COMPILE_NOTICES]
