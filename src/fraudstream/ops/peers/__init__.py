"""Peers the bench compares fraudstream with: the same detector written on another stream framework."""
