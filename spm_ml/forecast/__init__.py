"""Bookings forecasts: the deal-level Monte Carlo and the rates it learns from history."""
