"""Full-text search over a user's visible history, Chinese (rjieba) and English alike."""
