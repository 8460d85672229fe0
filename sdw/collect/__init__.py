"""Local D4RL-style benchmark suite: behaviour policy training, policy zoo, dataset building."""
