"""Worker-side code of the pool benchmark: the completion tally and the alsek task modules.

Each module is started by ``bench/pools.py`` through a pool's CLI, in a subprocess whose
environment says where Redis is (see ``settings``). The peers' apps live in ``bench/peers``.
"""
