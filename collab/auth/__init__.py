"""Identity: who is connecting (authenticate), and what they may do in a room (policy)."""
