"""Use cases and rules of rsvpmail: plain functions over a DB session, the clock and message bytes.

Nothing in this package talks to the network.
"""
