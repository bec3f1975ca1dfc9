"""A small shop whose orders are priced and charged, and receipts sent, by alsek tasks."""
