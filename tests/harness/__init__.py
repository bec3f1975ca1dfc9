"""Tests of the server harness (``alsek.testing``) and the fixtures the suites use it through."""
