"""Availability (API.md s8): the interval algebra, the parsed query, the engine that answers
it from each member's free time, and the seam for managed availability. Pure: no I/O."""
