"""Helpers with no knowledge of brokers, tasks or workers: the bottom layer of alsek."""
