"""Every action a person can take, as one typed function each."""
