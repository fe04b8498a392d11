"""Speed checks of rsvpmail, run with ``python -m bench`` (all) or ``python -m bench send``.

Each module ``bench/<name>.py`` defines ``main(argv) -> int`` and prints its measurements as
ratios against a baseline measured in the same process and run, so results do not depend
on how fast the machine is. They are not tests: nothing here runs under pytest.
"""
