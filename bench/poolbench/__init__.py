"""The pool benchmark's harness (``bench/pools.py`` is its command line).

``setups`` says what runs, ``installs`` prepares the peers, ``children`` starts and stops the
workers and producers, ``runner`` measures one run of each kind, ``figures`` takes the rounds,
``comparisons`` holds the targets, and ``report`` prints and writes the results.
"""
